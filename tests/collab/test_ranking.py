"""Ranking learners on data with a known answer: what each user should be shown next."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from recsys.collab import CollabData
from recsys.collab.ranking import ranking_learner
from recsys.collab.ranking_learner import RankingLearner
from recsys.models.scorer import CollabScorer
from recsys.train.callbacks import SaveBest
from recsys.train.losses import SampledSoftmaxScores, weighted_softmax_loss
from tests.factories import two_taste_groups


def taste_data() -> tuple[CollabData, pd.DataFrame]:
    train, held_out = two_taste_groups()
    return CollabData.from_df(train, valid_df=held_out, batch_size=64), held_out


def top3(learn: RankingLearner, held_out: pd.DataFrame) -> None:
    recommender = learn.recommender()
    for row in held_out.itertuples():
        top = recommender.recommend(row.user_id, n=3).frame()
        assert row.item_id in set(top["item_id"]), (row.user_id, top)


@pytest.mark.parametrize(
    "options",
    [
        {"model": "dot"},  # 20 items: the exact softmax
        {"model": "dot", "n_negatives": 6},  # drawn negatives with the logQ correction
        {"model": "dot", "loss": "bpr"},
        {"model": "ease", "l2": 10.0},
        {"model": "ials"},  # its ridge, confidence scale, sweeps and half-life chosen
    ],
    ids=["softmax", "sampled-softmax", "bpr", "ease", "ials"],
)
def test_each_users_held_out_favourite_ranks_in_their_top_three(options: dict) -> None:
    data, held_out = taste_data()
    torch.manual_seed(0)
    learn = ranking_learner(data, n_factors=8, progress=False, device="cpu", **options)
    learn.fit_one_cycle(*(() if options["model"] in ("ease", "ials") else (15, 0.05, 0.0)))

    top3(learn, held_out)
    last = learn.recorder.rows[-1]
    assert {"ndcg", "recall", "coverage"} <= set(last)
    assert max(row["ndcg"] for row in learn.recorder.rows) >= 0.9


def test_the_best_ndcg_epoch_is_the_one_kept() -> None:
    data, _ = taste_data()
    torch.manual_seed(0)
    learn = ranking_learner(data, n_factors=8, progress=False, device="cpu")
    learn.fit_one_cycle(6, 0.05, 0.0)
    best = max(row["ndcg"] for row in learn.recorder.rows)
    assert learn.ranking_metrics()["ndcg"] == pytest.approx(best)


def test_recommendations_never_repeat_what_the_user_rated() -> None:
    train, held_out = two_taste_groups()
    data = CollabData.from_df(train, valid_df=held_out, batch_size=64)
    learn = ranking_learner(data, n_factors=8, progress=False, device="cpu")
    learn.fit_one_cycle(3, 0.05)
    recommender = learn.recommender()
    for user, rated in train.groupby("user_id")["item_id"]:
        top = recommender.recommend(user, n=20).frame()
        assert not set(top["item_id"]) & set(rated)
        assert len(top) == 20 - len(rated)


def test_training_is_deterministic_for_a_seed() -> None:
    data, _ = taste_data()

    def scores() -> torch.Tensor:
        torch.manual_seed(3)
        learn = ranking_learner(data, n_factors=8, n_negatives=6, progress=False, device="cpu")
        learn.fit_one_cycle(3, 0.05)
        return learn.scoring_model.score_all_items(torch.arange(data.n_users))

    assert torch.equal(scores(), scores())


class Table(CollabScorer):
    """A scorer whose scores are a fixed table, to read the sampled logits against."""

    def __init__(self, scores: torch.Tensor) -> None:
        super().__init__()
        self.scores = scores
        self.n_users, self.n_items = scores.shape
        self.rating_range = None

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.scores[users, items]

    def score_all_items(self, users: torch.Tensor) -> torch.Tensor:
        return self.scores[users]

    def score_candidates(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.scores[users][:, items]

    def item_embeddings(self) -> torch.Tensor:
        return self.scores.T


def test_sampled_softmax_corrects_for_popularity_and_masks_the_chosen_item() -> None:
    scores = torch.arange(12.0).view(3, 4)
    counts = torch.tensor([1, 3, 9, 27])
    objective = SampledSoftmaxScores(Table(scores), counts, n_negatives=3, alpha=1.0)
    x = torch.tensor([[0, 1], [2, 3]])
    torch.manual_seed(0)
    logits = objective(x)
    torch.manual_seed(0)
    drawn = torch.multinomial(objective.probabilities, 3, replacement=True)

    log_q = torch.log(counts / counts.sum())
    assert torch.allclose(logits[:, 0], scores[x[:, 0], x[:, 1]] - log_q[x[:, 1]])
    expected = scores[x[:, 0]][:, drawn] - log_q[drawn]
    hit = drawn[None, :] == x[:, 1:2]
    assert hit.any()  # the popular item 3 is drawn for the row that chose it
    assert torch.isneginf(logits[:, 1:][hit]).all()
    assert torch.allclose(logits[:, 1:][~hit], expected[~hit])


def test_with_enough_negatives_the_softmax_is_exact_over_every_item() -> None:
    scores = torch.randn(3, 5)
    objective = SampledSoftmaxScores(Table(scores), torch.ones(5), n_negatives=5)
    x = torch.tensor([[0, 4], [1, 0]])
    logits = objective(x)
    loss = weighted_softmax_loss()(logits, torch.tensor([5.0, 5.0]))
    expected = torch.nn.functional.cross_entropy(scores[x[:, 0]], x[:, 1])
    assert torch.allclose(loss, expected)


def test_low_ratings_weigh_less_in_the_loss() -> None:
    logits = torch.tensor([[0.0, 2.0], [2.0, 0.0]])  # row 0 badly ranked, row 1 well
    loss = weighted_softmax_loss(low_weight=0.25)
    # Row 0 rated 2 (weight 0.25), row 1 rated 5: the good row dominates.
    assert loss(logits, torch.tensor([2.0, 5.0])) < loss(logits, torch.tensor([5.0, 2.0]))


def test_unknown_model_and_loss_names_are_refused() -> None:
    data, _ = taste_data()
    with pytest.raises(ValueError, match="model must be dot, nn, ease or ials"):
        ranking_learner(data, model="svd")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="loss must be softmax or bpr"):
        ranking_learner(data, loss="warp")  # type: ignore[arg-type]


def test_users_who_chose_every_item_keep_no_negative_to_draw() -> None:
    from recsys.data.sampling import NegativeSampledBatches

    users, items = np.zeros(5, dtype=np.int64), np.arange(5)
    sampler = NegativeSampledBatches(users, items, n_items=5, batch_size=5)
    assert sampler.is_positive(users, sampler.sample_negatives(users)).all()


def test_ease_says_that_schedules_do_not_apply_instead_of_ignoring_them() -> None:
    from recsys.jobs.training_job import TrainConfig

    data, _ = taste_data()
    learn = ranking_learner(data, model="ease", progress=False, device="cpu")
    for call in (
        lambda: learn.fit(5),
        lambda: learn.fit_one_cycle(3, 1e-2),
        lambda: learn.fit(cbs=[SaveBest("ndcg")]),
    ):
        with pytest.raises(ValueError, match="EASE is solved in closed form"):
            call()
    with pytest.raises(ValueError, match="no learning rate to find"):
        learn.lr_find()
    with pytest.raises(ValueError, match="ease is solved in closed form: epochs, lr do not apply"):
        TrainConfig(objective="ranking", model="ease", epochs=3, lr=0.1)
    learn.fit_one_cycle()  # the solve itself
    assert learn.recorder.rows[-1]["ndcg"] > 0.9


def drifting_tastes() -> pd.DataFrame:
    """20 users who only ever rate items 0-19, 20 who only rate 20-39, and 30 who
    rated 8 of 0-19 long ago and then 8 of 20-39: what they do next is 20-39."""
    rng = np.random.default_rng(0)
    rows = []
    for user in range(70):
        if user < 40:
            group = 20 * (user // 20)
            picks = [(group + item, time) for time, item in enumerate(rng.permutation(20)[:12])]
        else:
            old, new = rng.permutation(20)[:8], 20 + rng.permutation(20)[:8]
            picks = [(int(item), time) for time, item in enumerate([*old, *new])]
        rows += [(f"u{user}", f"i{item}", 5.0, 1000 + time) for item, time in picks]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


def test_ease_chooses_recency_weighting_where_tastes_drift_and_the_refit_keeps_it() -> None:
    from recsys.data.ratings import RatingsTable
    from recsys.jobs.training_job import TrainConfig, fit_select_refit

    table = RatingsTable.from_frame(drifting_tastes())
    config = TrainConfig(objective="ranking", split="temporal", valid_pct=0.2, device="cpu")
    fitted = fit_select_refit(table, config, progress=False)
    assert fitted.config.model == "ease"  # auto, for a catalog this size
    chosen = fitted.settings["half_life"]
    assert chosen > 0
    assert fitted.served.model.config.half_life == chosen
    no_decay = fit_select_refit(table, replace(config, half_life=0.0), progress=False)
    assert fitted.selected.served_metrics()["ndcg"] > no_decay.selected.served_metrics()["ndcg"]


def test_ease_without_rating_times_scores_without_decay() -> None:
    data, _ = taste_data()  # from a frame without times
    learn = ranking_learner(data, model="ease", progress=False, device="cpu")
    learn.fit()
    assert learn.chosen_settings()["half_life"] == 0.0


def test_ease_chooses_its_ridge_on_the_hold_out_and_the_refit_solves_with_it() -> None:
    from recsys.collab.ease_learner import EASE_L2S
    from recsys.data.ratings import RatingsTable
    from recsys.jobs.training_job import TrainConfig, fit_select_refit

    table = RatingsTable.from_frame(drifting_tastes())
    config = TrainConfig(objective="ranking", model="ease", valid_pct=0.2, device="cpu")
    fitted = fit_select_refit(table, config, progress=False)
    tried = {
        l2: fit_select_refit(table, replace(config, l2=l2), progress=False).selected
        for l2 in EASE_L2S
    }
    best = max(tried, key=lambda l2: tried[l2].served_metrics()["ndcg"])
    assert fitted.settings["l2"] == best
    assert fitted.served.model.config.l2 == best
    assert fitted.selected.served_metrics()["ndcg"] == tried[best].served_metrics()["ndcg"]


def test_epochs_are_compared_on_a_user_sample_and_the_kept_one_measured_on_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from recsys.collab import ranking_learner as base

    monkeypatch.setattr(base, "VALIDATION_SAMPLE_USERS", 10)
    data, _ = taste_data()
    torch.manual_seed(0)
    learn = ranking_learner(data, n_factors=8, progress=False, device="cpu")
    learn.fit_one_cycle(4, 0.05, 0.0)
    rows = learn.recorder.rows
    kept = [row for row in rows if "ndcg_sample" in row]
    assert len(kept) == 1
    assert kept[0]["epoch"] == learn.kept_epoch
    everyone = learn.ranking_metrics()  # the restored weights, every validation user
    assert learn.served_metrics()["ndcg"] == pytest.approx(everyone["ndcg"])
    assert learn.chosen_settings() == {"epochs": int(kept[0]["epoch"]) + 1}
    assert (
        max(row["ndcg"] if row is not kept[0] else row["ndcg_sample"] for row in rows)
        == (kept[0]["ndcg_sample"])
    )  # it was the best epoch on the sample


def test_ials_chooses_its_settings_on_the_hold_out_and_the_refit_solves_with_them() -> None:
    from recsys.collab.ials_learner import IALS_ALPHAS, IALS_L2S
    from recsys.data.ratings import RatingsTable
    from recsys.jobs.training_job import TrainConfig, fit_select_refit

    table = RatingsTable.from_frame(drifting_tastes())
    config = TrainConfig(objective="ranking", model="ials", n_factors=8, valid_pct=0.2)
    fitted = fit_select_refit(table, replace(config, device="cpu"), progress=False)
    chosen = fitted.settings
    assert chosen["l2"] in IALS_L2S
    assert chosen["alpha"] in IALS_ALPHAS
    served = fitted.served.model.config
    assert (served.l2, served.alpha, served.half_life) == (
        chosen["l2"],
        chosen["alpha"],
        chosen["half_life"],
    )
    assert fitted.served.data.dls.train.n_rows == len(table)  # refitted on every rating
    # The same settings given outright: nothing left to choose, the same hold-out NDCG.
    given = replace(config, epochs=chosen["epochs"], l2=chosen["l2"], alpha=chosen["alpha"])
    again = fit_select_refit(
        table, replace(given, half_life=chosen["half_life"], device="cpu"), progress=False
    )
    assert again.selected.served_metrics()["ndcg"] == pytest.approx(
        fitted.selected.served_metrics()["ndcg"]
    )


def test_ials_says_that_a_learning_rate_does_not_apply() -> None:
    from recsys.jobs.training_job import TrainConfig

    data, _ = taste_data()
    learn = ranking_learner(data, model="ials", progress=False, device="cpu")
    with pytest.raises(ValueError, match="iALS is solved by alternating least squares; lr"):
        learn.fit_one_cycle(3, 1e-2)
    with pytest.raises(ValueError, match="ials is solved by alternating least squares: wd"):
        TrainConfig(objective="ranking", model="ials", wd=0.1)
    with pytest.raises(ValueError, match="ials ranks items and predicts no ratings"):
        TrainConfig(model="ials")
