"""Collaborative filtering: data sets, the rating/ranking/hybrid learners, the one
Recommender every caller uses, and evaluation.

Imports flow one way: ``dataset`` and ``interactions`` (data), ``top_k`` and
``recommender`` (answers), then the learners (``collab_learner``, ``ranking``,
``hybrid``) and ``evaluate``.
"""

from recsys.collab.collab_learner import CollabLearner, collab_learner
from recsys.collab.dataset import CollabData
from recsys.collab.interactions import Interactions
from recsys.collab.recommender import Recommender, TopItems, TopUsers, load_recommender

__all__ = [
    "CollabData",
    "CollabLearner",
    "Interactions",
    "Recommender",
    "TopItems",
    "TopUsers",
    "collab_learner",
    "load_recommender",
]
