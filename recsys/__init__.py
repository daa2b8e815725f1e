"""recsys: collaborative-filtering and tabular recommendations from a SQL database.

The notebook surface::

    from recsys import CollabData, collab_learner
    data = CollabData.from_df(ratings, user_col="user_id", item_col="item_id", rating_col="rating")
    learn = collab_learner(data)
    learn.fit_one_cycle()
    learn.recommend(user_id, n=10)
"""

from recsys.collab import CollabData, CollabLearner, Recommender, collab_learner, load_recommender
from recsys.models import DotProductBias, EmbeddingNN
from recsys.train.learner import Learner

__all__ = [
    "CollabData",
    "CollabLearner",
    "DotProductBias",
    "EmbeddingNN",
    "Learner",
    "Recommender",
    "collab_learner",
    "load_recommender",
]
