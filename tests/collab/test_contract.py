"""The recommender contract, run by every model kind on data whose answer is known.

Each user rated all but one item of their taste (5 stars) and a few of the other
taste (1 star); the held-out loved item must come back near the top, everything
they rated must not, and the masks, neighbours, persistence and batching must
behave the same whichever model is underneath.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from recsys import CollabData, collab_learner, load_recommender
from recsys.collab import CollabLearner, Recommender
from recsys.collab.ann_index import ItemIndex
from recsys.collab.blend_learner import Member, RankingBlendLearner, RatingBlendLearner
from recsys.collab.hybrid import hybrid_learner
from recsys.collab.interactions import Interactions
from recsys.collab.ranking import ranking_learner
from recsys.data.ids import IdMap, UnknownIdError
from recsys.interpret.embeddings import bias_ranking
from recsys.models import DotProductBias, DotProductBiasConfig
from recsys.models.blend import Blend
from recsys.models.scorer import CapabilityError, NoBiasesError, NoRatingScaleError
from tests.factories import taste_groups_with_unrated, taste_metadata

TRAIN, HELD_OUT = taste_groups_with_unrated()
ITEMS = [f"i{i}" for i in range(20)]
GROUP = {item: int(item[1:]) < 10 for item in ITEMS}  # True: the first taste group
USERS = sorted(TRAIN["user_id"].unique())
RATED = TRAIN.groupby("user_id")["item_id"].apply(set).to_dict()


def data() -> CollabData:
    return CollabData.from_df(TRAIN, valid_df=HELD_OUT, batch_size=64, seed=0)


def rating_learner(use_nn: bool) -> CollabLearner:
    return collab_learner(
        data(), n_factors=8, y_range=(0.5, 5.5), use_nn=use_nn, layers=[16], progress=False
    )


def rating(use_nn: bool) -> CollabLearner:
    learn = rating_learner(use_nn)
    learn.fit_one_cycle(30, 3e-2, wd=0.01)
    return learn


def ranking(model: str, loss: str, epochs: int = 15, lr: float = 0.05) -> CollabLearner:
    learn = ranking_learner(
        data(),
        model=model,
        loss=loss,
        n_factors=8,
        layers=[16],
        progress=False,  # type: ignore[arg-type]
    )
    learn.fit_one_cycle(epochs, lr, 0.0)
    return learn


def ease() -> CollabLearner:
    learn = ranking_learner(data(), model="ease", l2=10.0, progress=False)
    learn.fit_one_cycle()
    return learn


def ials() -> CollabLearner:
    learn = ranking_learner(data(), model="ials", n_factors=8, l2=10.0, alpha=10.0, progress=False)
    learn.fit_one_cycle()
    return learn


def blend(objective: str) -> CollabLearner:
    """Two members, the weights chosen on the hold-out among those that keep both."""
    if objective == "rating":
        members = [
            Member(
                "dot", rating_learner(use_nn=False), {"n_epoch": 30, "lr_max": 3e-2, "wd": 0.01}
            ),
            Member("nn", rating_learner(use_nn=True), {"n_epoch": 30, "lr_max": 3e-2, "wd": 0.01}),
        ]
        return fitted_blend(RatingBlendLearner(data(), members, (0.5, 0.5), progress=False))
    dot = ranking_learner(data(), model="dot", n_factors=8, progress=False)
    ials_member = ranking_learner(
        data(), model="ials", n_factors=8, l2=10.0, alpha=10.0, progress=False
    )
    members = [
        Member("ials", ials_member, {}),
        Member("dot", dot, {"n_epoch": 15, "lr_max": 0.05, "wd": 0.0}),
    ]
    return fitted_blend(RankingBlendLearner(data(), members, (0.5, 0.5), progress=False))


def fitted_blend(learn: CollabLearner) -> CollabLearner:
    learn.fit_one_cycle()
    assert isinstance(learn.scoring_model, Blend)
    return learn


def ease_and_ials() -> CollabLearner:
    members = [
        Member("ease", ranking_learner(data(), model="ease", l2=10.0, progress=False), {}),
        Member(
            "ials",
            ranking_learner(data(), model="ials", n_factors=8, l2=10.0, alpha=10.0, progress=False),
            {},
        ),
    ]
    return fitted_blend(RankingBlendLearner(data(), members, (0.5, 0.5), progress=False))


def hybrid() -> CollabLearner:
    users, items = taste_metadata()
    learn = hybrid_learner(data(), users, items, layers=[16], progress=False)
    learn.fit_one_cycle(30, 1e-2, 0.01)
    return learn


KINDS: dict[str, Callable[[], CollabLearner]] = {
    "rating-dot": lambda: rating(use_nn=False),
    "rating-nn": lambda: rating(use_nn=True),
    "ranking-dot-softmax": lambda: ranking("dot", "softmax"),
    "ranking-dot-bpr": lambda: ranking("dot", "bpr"),
    "ranking-nn-softmax": lambda: ranking("nn", "softmax"),
    "ranking-nn-bpr": lambda: ranking("nn", "bpr"),
    "ease": ease,
    "ials": ials,
    "blend-ranking-ials-dot": lambda: blend("ranking"),
    "blend-ranking-ease-ials": ease_and_ials,
    "blend-rating-dot-nn": lambda: blend("rating"),
    "hybrid": hybrid,
}


@pytest.fixture(scope="module", params=list(KINDS))
def learner(request: pytest.FixtureRequest) -> CollabLearner:
    torch.manual_seed(0)
    return KINDS[request.param]()


@pytest.fixture(scope="module")
def recommender(learner: CollabLearner) -> Recommender:
    return learner.recommender()


def test_each_users_held_out_favourite_ranks_in_their_top_three(recommender: Recommender) -> None:
    for row in HELD_OUT.itertuples():
        top = recommender.recommend(row.user_id, n=3).frame()
        assert row.item_id in set(top["item_id"]), (row.user_id, top)


def test_seen_items_never_come_back(recommender: Recommender) -> None:
    for user in USERS:
        top = recommender.recommend(user, n=50).frame()  # n beyond the catalog
        assert not set(top["item_id"]) & RATED[user]
        assert len(top) == 20 - len(RATED[user])  # every unseen item, nothing more
        assert list(top["score"]) == sorted(top["score"], reverse=True)
        assert len(recommender.recommend(user, n=50, exclude_seen=False)) == 20


def test_pages_follow_each_other(recommender: Recommender) -> None:
    for user in USERS[:8]:
        whole = recommender.recommend_many([user], 12, exclude=["i2"])[0]
        pages = [
            recommender.recommend_many([user], 4, exclude=["i2"], offset=offset)[0]
            for offset in (0, 4, 8)
        ]
        assert [i for page in pages for i in page.item_ids] == list(whole.item_ids)
        beyond = recommender.recommend_many([user], 4, offset=len(ITEMS))[0]
        assert len(beyond) == 0  # past the end: an empty page, not an error


def test_hidden_items_are_never_answered_until_shown(recommender: Recommender) -> None:
    hiding = copy.copy(recommender)  # the shared one untouched
    hiding.hide(["i1", "i12", "never-seen"])
    for user in USERS:
        top = hiding.recommend(user, n=20, exclude_seen=False)
        assert len(top) == 18
        assert not {"i1", "i12"} & set(top.item_ids)
    for item in ("i0", "i13"):
        assert not {"i1", "i12"} & set(hiding.similar_items(item, n=19).item_ids)
    hiding.hide([])  # these and no others: shown again
    assert len(hiding.recommend(USERS[0], n=20, exclude_seen=False)) == 20


def test_similar_users_share_a_taste_or_say_the_model_has_no_user_vectors(
    recommender: Recommender,
) -> None:
    try:
        nearest = recommender.similar_users("u0", n=5)
    except CapabilityError:  # EASE, and a blend with EASE: said so
        with pytest.raises(CapabilityError, match="has no user vectors"):
            recommender.similar_users("u0", n=5)
        return
    assert "u0" not in set(nearest.user_ids)
    assert len(nearest) == 5
    same_taste = {u for u in USERS if int(u[1:]) % 2 == 0}  # even users share u0's taste
    assert set(nearest.user_ids) <= same_taste, list(nearest.user_ids)
    assert np.all(np.diff(nearest.scores) <= 0)


@pytest.fixture(scope="module")
def approximate(learner: CollabLearner) -> Recommender:
    """The same model answering recommendations from an approximate index over its items
    (forced on: the catalog is small); it must never score every item."""
    recommender = copy.copy(learner.recommender())
    recommender.model = copy.deepcopy(recommender.model)  # its own, to spy on
    try:
        recommender.use_index(ItemIndex.build(recommender.model))
    except CapabilityError:
        pytest.skip("its scores are not inner products of user and item vectors: no index")

    def every_item(*_: object) -> None:
        raise AssertionError("the approximate path scored every item")

    recommender.model.score_all_items = every_item  # type: ignore[method-assign, assignment]
    return recommender


def test_the_approximate_path_answers_by_the_same_rules(
    recommender: Recommender, approximate: Recommender
) -> None:
    """Same items and scores as the exact path, pages that follow each other, and no
    seen, excluded or hidden item, ever."""
    for hidden in ([], ["i3", "i12"]):
        recommender.hide(hidden)
        approximate.hide(hidden)
        for user in USERS[:8]:
            for n, offset, exclude in ((3, 0, []), (3, 3, ["i0", "i10"]), (20, 0, ["i5"])):
                exact = recommender.recommend_many([user], n, exclude=exclude, offset=offset)[0]
                answer = approximate.recommend_many([user], n, exclude=exclude, offset=offset)[0]
                assert list(answer.item_ids) == list(exact.item_ids)
                np.testing.assert_allclose(answer.scores, exact.scores, rtol=1e-5, atol=1e-6)
                assert not set(answer.item_ids) & (RATED[user] | set(exclude) | set(hidden))
            first, second = (approximate.recommend_many([user], 3, offset=o)[0] for o in (0, 3))
            whole = approximate.recommend_many([user], 6)[0]
            assert [*first.item_ids, *second.item_ids] == list(whole.item_ids)
    recommender.hide([])
    approximate.hide([])


def test_exclude_and_allowed_apply_before_the_cut(recommender: Recommender) -> None:
    user = USERS[0]
    unseen = [i for i in ITEMS if i not in RATED[user]]
    full = list(recommender.recommend(user, n=len(unseen)).item_ids)
    without_best = recommender.recommend(user, n=3, exclude=[full[0], "not-an-item"]).frame()
    assert list(without_best["item_id"]) == full[1:4]  # still three items
    other_taste = [i for i in unseen if GROUP[i] != GROUP[full[0]]]
    allowed = recommender.recommend(
        user, n=3, allowed=[*other_taste, sorted(RATED[user])[0]]
    ).frame()
    assert list(allowed["item_id"]) == [i for i in full if i in other_taste][:3]


def test_similar_items_are_of_the_same_taste_and_never_the_item_itself(
    recommender: Recommender,
) -> None:
    for item in ("i0", "i7", "i12", "i19"):
        neighbours = recommender.similar_items(item, n=4).frame()
        assert item not in set(neighbours["item_id"])
        assert len(neighbours) == 4
        assert all(GROUP[i] == GROUP[item] for i in neighbours["item_id"]), (item, neighbours)
    assert len(recommender.similar_items("i0", n=500)) == 19  # every other item, no more


def test_because_you_liked_names_a_liked_item_of_the_same_taste(
    recommender: Recommender,
) -> None:
    row = HELD_OUT.iloc[0]
    reasons = recommender.explain(row.user_id, row.item_id, n=3)
    loved = {i for i in RATED[row.user_id] if GROUP[i] == GROUP[row.item_id]}
    assert len(reasons) == 3
    assert set(reasons.item_ids) <= loved


def test_the_similarity_table_gives_the_same_reasons(recommender: Recommender) -> None:
    users = list(recommender.user_map.ids[:10])
    items = list(recommender.item_map.ids)
    computed = [recommender.because_you_liked(u, items, n=3) for u in users]
    looked_up = copy.copy(recommender)
    looked_up.use_similarity_table(recommender.item_similarity_table())
    for user, expected in zip(users, computed, strict=True):
        for ours, theirs in zip(
            looked_up.because_you_liked(user, items, n=3), expected, strict=True
        ):
            assert list(ours.item_ids) == list(theirs.item_ids)
            np.testing.assert_allclose(ours.scores, theirs.scores, atol=1e-5)


def test_reasons_for_a_ranked_answer_are_those_for_its_ids(recommender: Recommender) -> None:
    for user in recommender.user_map.ids[:5]:
        top = recommender.recommend(user, n=5)
        by_answer = recommender.because_you_liked(user, top, n=2)
        by_ids = recommender.because_you_liked(user, list(top.item_ids), n=2)
        assert [list(r.item_ids) for r in by_answer] == [list(r.item_ids) for r in by_ids]


def test_save_then_load_gives_identical_answers(learner: CollabLearner, tmp_path: Path) -> None:
    before = learner.recommender()
    after = load_recommender(learner.save(tmp_path / "model.pt"))
    for ours, theirs in zip(
        before.recommend_many(USERS, n=5), after.recommend_many(USERS, n=5), strict=True
    ):
        assert list(ours.item_ids) == list(theirs.item_ids)
        assert np.allclose(ours.scores, theirs.scores, atol=1e-6)
    pairs = pd.DataFrame({"user_id": ["u0", "u1"], "item_id": ["i1", "i19"]})
    if before.model.rating_range is None:
        with pytest.raises(NoRatingScaleError):
            after.predict(pairs)
    else:
        assert np.allclose(before.predict(pairs).ratings, after.predict(pairs).ratings, atol=1e-6)


def test_an_unknown_id_is_named(recommender: Recommender) -> None:
    with pytest.raises(UnknownIdError, match="unknown user id 'nobody'"):
        recommender.recommend_many(["u0", "nobody"])
    with pytest.raises(UnknownIdError, match="unknown item id 'nothing'"):
        recommender.similar_items("nothing")
    if recommender.model.rating_range is not None:
        with pytest.raises(UnknownIdError, match="unknown item id 'nothing'"):
            recommender.predict(pd.DataFrame({"user_id": ["u1"], "item_id": ["nothing"]}))


def test_the_batched_answer_equals_the_one_user_answer(recommender: Recommender) -> None:
    batched = recommender.recommend_many(USERS, n=6, exclude=["i3"], allowed=ITEMS[2:])
    for user, together in zip(USERS, batched, strict=True):
        alone = recommender.recommend_many([user], n=6, exclude=["i3"], allowed=ITEMS[2:])[0]
        assert list(together.item_ids) == list(alone.item_ids)
        assert np.allclose(together.scores, alone.scores, atol=1e-5)


def test_a_deleted_rating_is_unseen_again_until_rated_again(recommender: Recommender) -> None:
    seen = recommender.seen
    # Its own seen items (the shared ones untouched): the same ratings, nothing since.
    own = recommender.with_seen(
        Interactions(seen.indptr, seen.indices, seen.liked_flags, seen.n_items)
    )
    user = USERS[0]
    loved = sorted(i for i in RATED[user] if GROUP[i] == GROUP[HELD_OUT.iloc[0].item_id])[0]
    pair = pd.DataFrame({"user_id": [user], "item_id": [loved]})
    own.remove_feedback(pair)
    top = own.recommend(user, n=20).frame()
    assert loved in set(top["item_id"])
    assert len(top) == 20 - len(RATED[user]) + 1
    others = [i for i in ITEMS if i != loved]
    assert all(loved not in set(r.item_ids) for r in own.because_you_liked(user, others, n=20))
    own.add_feedback(pair.assign(rating=5.0))  # the later write wins
    assert loved not in set(own.recommend(user, n=20).item_ids)
    assert loved in set(recommender.explain(user, "i9" if loved != "i9" else "i8", n=20).item_ids)


def test_forgotten_users_and_items_are_unknown_and_never_answered(
    recommender: Recommender,
) -> None:
    forgetting = copy.copy(recommender)  # the shared one untouched
    forgetting.forget(user_ids=["u1", "nobody"], item_ids=["i3", "nothing"])
    with pytest.raises(UnknownIdError, match="unknown user id 'u1'"):
        forgetting.recommend_many(["u0", "u1"])
    with pytest.raises(UnknownIdError, match="unknown user id 'u1'"):
        forgetting.explain("u1", "i0")
    with pytest.raises(UnknownIdError, match="unknown item id 'i3'"):
        forgetting.similar_items("i3")
    remembered = [i for i in ITEMS if i != "i3"]
    for user in USERS:
        if user == "u1":
            continue
        assert "i3" not in set(forgetting.recommend(user, n=20, exclude_seen=False).item_ids)
        reasons = forgetting.because_you_liked(user, remembered, n=20)
        assert all("i3" not in set(r.item_ids) for r in reasons)
    for item in remembered:
        assert "i3" not in set(forgetting.similar_items(item, n=19).item_ids)
    try:
        nearest = forgetting.similar_users("u0", n=len(USERS))
    except CapabilityError:  # no user vectors (EASE, a blend with EASE)
        nearest = None
    if nearest is not None:
        assert len(nearest) == len(USERS) - 2  # everyone but u0 and the forgotten u1
        assert "u1" not in set(nearest.user_ids)
        with pytest.raises(UnknownIdError):
            forgetting.similar_users("u1")
    if forgetting.model.rating_range is not None:
        pairs = pd.DataFrame({"user_id": ["u1", "u0"], "item_id": ["i0", "i3"]})
        with pytest.raises(UnknownIdError):
            forgetting.predict(pairs)
        if forgetting.baseline is not None:
            assert forgetting.predict(pairs, unknown="baseline").baseline.all()
    try:  # what `recsys interpret biases` and the explorer list
        users, _ = bias_ranking(forgetting, n=len(USERS), side="user")
        items, _ = bias_ranking(forgetting, n=len(ITEMS), side="item")
    except NoBiasesError:
        pass
    else:
        assert len(users) == len(USERS) - 1
        assert "u1" not in set(users["user_id"])
        assert len(items) == len(ITEMS) - 1
        assert "i3" not in set(items["item_id"])
    assert len(recommender.recommend("u1", n=3)) == 3  # the original still knows them
    assert "i3" in set(recommender.recommend("u0", n=20, exclude_seen=False).item_ids)


def test_a_new_user_is_folded_in_from_three_ratings(recommender: Recommender) -> None:
    for taste, loved in ((True, ["i1", "i4", "i7"]), (False, ["i11", "i14", "i17"])):
        ratings = pd.DataFrame({"item_id": [*loved, "never-seen"], "rating": [5.0] * 4})
        top = recommender.recommend_from_ratings(ratings, n=5, exclude=["i2"])
        assert len(top.item_ids) == 5
        assert not set(top.item_ids) & {*loved, "i2"}
        assert all(GROUP[i] == taste for i in top.item_ids), (taste, list(top.item_ids))
    with pytest.raises(UnknownIdError):
        recommender.recommend_from_ratings(pd.DataFrame({"item_id": ["x"], "rating": [5.0]}))


def test_similarities_are_cosines_within_minus_one_and_one() -> None:
    """Twins (users or items with the same vector) are exactly as alike as cosines allow:
    float32 products of unit vectors reached 1.0000005, answered as a cosine."""
    torch.manual_seed(0)
    n = 40
    model = DotProductBias(DotProductBiasConfig(n, n, 64, y_range=(0.0, 5.5)))
    with torch.no_grad():
        model.user_factors.normal_()
        model.item_factors.normal_()
        model.user_factors[n // 2 :] = model.user_factors[: n // 2]  # user k + 20 twins user k
        model.item_factors[n // 2 :] = model.item_factors[: n // 2]
    everyone = np.arange(n)
    seen = Interactions.from_ratings(
        np.repeat(everyone, n), np.tile(everyone, n), np.full(n * n, 5.0), n, n
    )
    ids = np.array([f"x{k}" for k in range(n)], dtype=object)
    recommender = Recommender(model, IdMap("user", ids), IdMap("item", ids), seen)
    scores = [
        *(recommender.similar_items(f"x{k}", n=3).scores for k in range(n)),
        *(recommender.similar_users(f"x{k}", n=3).scores for k in range(n)),
        *(recommender.explain(f"x{k}", f"x{k}", n=3).scores for k in range(n)),
    ]
    top = max(float(np.max(s)) for s in scores)
    assert top <= 1.0
    assert top == pytest.approx(1.0)  # the twins are found
