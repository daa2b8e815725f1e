"""Training runs become model versions; a failed run leaves the active one in place."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, update

from recsys.artifacts import read_payload
from recsys.collab import load_recommender
from recsys.db.ingest import ingest
from recsys.db.sources import from_frame
from recsys.db.tables import model_versions
from recsys.jobs.model_versions import (
    STALE_AFTER_SECONDS,
    ActivationError,
    activate,
    active_version,
    get_version,
    heartbeats,
    list_versions,
    rollback,
    start_version,
)
from recsys.jobs.training_job import TrainConfig, train_and_register
from tests.factories import taste_groups_with_unrated, two_taste_groups

SMALL = TrainConfig(epochs=2, batch_size=64, n_factors=4, device="cpu")
GOOD = TrainConfig(epochs=30, lr=0.03, wd=0.01, batch_size=64, n_factors=8, device="cpu")
WORSE = TrainConfig(epochs=1, lr=1e-4, batch_size=64, n_factors=8, device="cpu")


def test_a_run_is_registered_ready_with_metrics_and_becomes_active(
    engine: Engine, tmp_path: Path
) -> None:
    train, _ = two_taste_groups()
    ingest(engine, from_frame("ratings", train, 500))

    first = train_and_register(engine, SMALL, tmp_path, progress=False).version_id
    second = train_and_register(engine, SMALL, tmp_path, progress=False).version_id

    versions = list_versions(engine)
    assert [v.id for v in versions] == [second, first]
    assert [v.is_active for v in versions] == [True, False]
    active = active_version(engine)
    assert active is not None
    assert active.status == "ready"
    assert active.hyperparameters["epochs"] == 2
    assert set(active.metrics) >= {"rmse", "mae", "n_train", "n_valid"}
    assert active.metrics["n_ratings"] == len(train)
    assert active.metrics["max_timestamp"] == train["timestamp"].max()
    assert len(load_recommender(active.artifact_path).recommend("u1", n=1)) == 1
    saved = read_payload(active.artifact_path)["metadata"]
    assert saved["data"] == {"n_ratings": len(train), "max_timestamp": 1019}
    assert set(saved["libraries"]) == {"recsys", "torch", "numpy", "pandas", "python"}
    assert saved["config"]["epochs"] == 2


def test_a_failed_run_is_recorded_and_the_active_version_stays(
    engine: Engine, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="no ratings"):
        train_and_register(engine, SMALL, tmp_path, progress=False)
    (failed,) = list_versions(engine)
    assert failed.status == "failed"
    assert "no ratings" in (failed.error or "")
    assert active_version(engine) is None


def load_taste_groups(engine: Engine) -> None:
    train, _ = two_taste_groups()
    ingest(engine, from_frame("ratings", train, 500))


def newer_ratings(engine: Engine) -> pd.DataFrame:
    """Each user's held-out favourite, rated after everything loaded so far."""
    _, held_out = two_taste_groups()
    held_out = held_out.assign(timestamp=5_000)
    ingest(engine, from_frame("ratings", held_out, 500))
    return held_out


def test_the_gate_judges_both_models_only_on_ratings_neither_trained_on(
    engine: Engine, tmp_path: Path
) -> None:
    load_taste_groups(engine)
    first = train_and_register(engine, GOOD, tmp_path, progress=False, promote="auto")
    assert first.promoted
    assert first.reason == "no rating version was active"
    newer = newer_ratings(engine)

    second = train_and_register(engine, WORSE, tmp_path, progress=False, promote="auto")
    assert not second.promoted
    assert "does not beat the active version's" in second.reason
    # Exactly the ratings added after the active version's snapshot (those the new
    # model can score: i19 is all in its hold-out), and the active model's RMSE on them.
    scorable = newer[newer["item_id"].isin(second.fitted.selected.data.item_map.ids)]
    assert 0 < len(scorable) < len(newer)
    assert f"on {len(scorable)} held-out ratings newer than anything either" in second.reason
    judged = get_version(engine, second.version_id).metrics
    assert judged["gate_compared"] == len(scorable)
    served = load_recommender(get_version(engine, first.version_id).artifact_path)
    errors = served.predict(scorable).ratings - scorable["rating"].to_numpy()
    assert judged["gate_active_rmse"] == pytest.approx(np.sqrt(np.mean(errors**2)), rel=1e-5)
    assert active_version(engine).id == first.version_id
    assert list_versions(engine)[0].status == "ready"  # kept, just not served

    never = train_and_register(engine, GOOD, tmp_path, progress=False, promote="never")
    assert not never.promoted
    assert active_version(engine).id == first.version_id


def test_with_no_new_ratings_the_gate_falls_back_to_the_recorded_hold_out_metric(
    engine: Engine, tmp_path: Path
) -> None:
    load_taste_groups(engine)
    first = train_and_register(engine, GOOD, tmp_path, progress=False, promote="auto")
    second = train_and_register(engine, WORSE, tmp_path, progress=False, promote="auto")
    assert not second.promoted
    recorded = get_version(engine, first.version_id).metrics["rmse"]
    assert second.reason.startswith(
        "only 0 held-out ratings are newer than the active version's data (fewer than 20): "
        "hold-out RMSE "
    )
    assert second.reason.endswith(f"is worse than the {recorded:.4f} it recorded")


def test_the_served_model_is_refitted_on_every_rating(engine: Engine, tmp_path: Path) -> None:
    """A user whose only ratings are the latest (all in the time hold-out) is unknown to
    the model that chose the epochs, and known to the one that is served."""
    load_taste_groups(engine)
    late = pd.DataFrame(
        {"user_id": "late", "item_id": [f"i{i}" for i in range(10)], "rating": 5.0,
         "timestamp": 9_000}
    )  # fmt: skip
    ingest(engine, from_frame("ratings", late, 500))
    by_time = replace(SMALL, split="time")
    refitted = train_and_register(engine, by_time, tmp_path, progress=False)
    assert "late" not in refitted.fitted.selected.data.user_map
    served = load_recommender(active_version(engine).artifact_path)
    assert "late" in served.user_map
    metrics = active_version(engine).metrics
    assert metrics["refit"] is True
    assert metrics["n_served_model_ratings"] == metrics["n_ratings"]
    assert metrics["n_train"] + metrics["n_valid"] < metrics["n_ratings"]  # 'late' dropped
    assert read_payload(active_version(engine).artifact_path)["metadata"]["refit_settings"] == {
        "epochs": 2
    }

    kept = train_and_register(engine, replace(by_time, refit=False), tmp_path, progress=False)
    assert kept.fitted.served is kept.fitted.selected
    assert "late" not in load_recommender(active_version(engine).artifact_path).user_map


def test_activation_refuses_a_damaged_artifact_and_rollback_goes_back_one(
    engine: Engine, tmp_path: Path
) -> None:
    load_taste_groups(engine)
    first = train_and_register(engine, SMALL, tmp_path, progress=False).version_id
    second = train_and_register(engine, SMALL, tmp_path, progress=False).version_id
    assert active_version(engine).id == second

    assert rollback(engine).id == first
    assert activate(engine, second).id == second

    Path(get_version(engine, first).artifact_path).write_bytes(b"not a model")
    with pytest.raises(
        ActivationError, match=f"model version {first}: its weights at .* do not load"
    ):
        activate(engine, first)
    assert active_version(engine).id == second
    with pytest.raises(ActivationError, match="there is no model version 999"):
        activate(engine, 999)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def set_owner(engine: Engine, version_id: int, owner: str | None, age_seconds: float) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(model_versions)
            .where(model_versions.c.id == version_id)
            .values(owner=owner, heartbeat_at=datetime.now(UTC) - timedelta(seconds=age_seconds))
        )


def test_only_runs_that_are_provably_gone_are_marked_failed(engine: Engine, tmp_path: Path) -> None:
    load_taste_groups(engine)
    host = socket.gethostname()
    live = start_version(engine, "dot", {}, "ranking")  # this very process: alive
    killed = start_version(engine, "dot", {})
    set_owner(engine, killed, f"{host}:{dead_pid()}", 1)  # as a SIGKILLed run leaves it
    elsewhere = start_version(engine, "dot", {})
    set_owner(engine, elsewhere, "another-host:12", 60)  # beating a minute ago
    silent = start_version(engine, "dot", {})
    set_owner(engine, silent, "another-host:13", STALE_AFTER_SECONDS + 60)
    legacy = start_version(engine, "dot", {})
    set_owner(engine, legacy, None, 0)  # from before runs had owners

    train_and_register(engine, SMALL, tmp_path, progress=False)

    for gone in (killed, silent, legacy):
        stale = get_version(engine, gone)
        assert stale.status == "failed"
        assert "stopped before it finished" in stale.error
    for alive in (live, elsewhere):
        assert get_version(engine, alive).status == "training"
        assert get_version(engine, alive).error is None


def test_a_training_run_beats_while_it_trains(engine: Engine) -> None:
    load_taste_groups(engine)
    version = start_version(engine, "dot", {})
    set_owner(engine, version, f"{socket.gethostname()}:{os.getpid()}", 100)
    before = get_version(engine, version).heartbeat_at
    with heartbeats(engine, version, every=0.05):
        time.sleep(0.3)
    assert get_version(engine, version).heartbeat_at > before


RANKING = TrainConfig(objective="ranking", epochs=8, lr=0.05, batch_size=64, n_factors=8)


def test_rating_and_ranking_versions_are_active_side_by_side(
    engine: Engine, tmp_path: Path
) -> None:
    load_taste_groups(engine)
    rating = train_and_register(engine, SMALL, tmp_path, progress=False).version_id
    ranking = train_and_register(engine, RANKING, tmp_path, progress=False)
    ease = train_and_register(
        engine, TrainConfig(objective="ranking", model="ease", l2=10.0), tmp_path, progress=False
    ).version_id

    assert active_version(engine, "rating").id == rating
    assert active_version(engine, "ranking").id == ease
    served = get_version(engine, ranking.version_id)
    assert (served.objective, served.kind, served.hyperparameters["split"]) == (
        "ranking",
        "dot",
        "cutoff",  # each user's ratings after one time, for every objective
    )
    assert {"ndcg", "recall", "coverage", "n_train"} <= set(served.metrics)
    assert "rmse" not in served.metrics
    loaded = load_recommender(get_version(engine, ease).artifact_path)
    assert len(loaded.recommend("u0", 3, exclude_seen=False)) == 3

    assert rollback(engine, "ranking").id == ranking.version_id
    assert active_version(engine, "rating").id == rating  # untouched by the other objective
    assert activate(engine, ease).objective == "ranking"
    with pytest.raises(ActivationError, match="no earlier ready rating version"):
        rollback(engine, "rating")


def test_auto_promotion_of_a_ranking_model_needs_a_better_ndcg(
    engine: Engine, tmp_path: Path
) -> None:
    # Users rated only a few items of the other taste: the ones they did not rate are
    # candidates beside their hidden favourite, so a ranking can be wrong.
    train, held_out = taste_groups_with_unrated()
    ingest(engine, from_frame("ratings", train, 500))
    first = train_and_register(engine, RANKING, tmp_path, progress=False, promote="auto")
    assert first.promoted
    assert first.reason == "no ranking version was active"

    ingest(engine, from_frame("ratings", held_out.assign(timestamp=5_000), 500))
    untrained = TrainConfig(objective="ranking", epochs=1, lr=1e-6, batch_size=64, n_factors=8)
    second = train_and_register(engine, untrained, tmp_path, progress=False, promote="auto")
    assert not second.promoted
    assert "does not beat the active version's" in second.reason
    assert "users newer than anything either was trained on" in second.reason
    assert active_version(engine, "ranking").id == first.version_id


def test_ease_is_a_ranking_model_only() -> None:
    with pytest.raises(ValueError, match="ease ranks items and predicts no ratings"):
        TrainConfig(model="ease")
    with pytest.raises(ValueError, match="objective must be rating or ranking"):
        TrainConfig(objective="clicks")  # type: ignore[arg-type]


def test_a_hold_out_with_nothing_to_judge_on_is_a_clear_error(
    engine: Engine, tmp_path: Path
) -> None:
    train, _ = taste_groups_with_unrated()
    # Each item rated at one time: the latest 10% are items the part before never saw.
    by_item = train.assign(timestamp=train["item_id"].str[1:].astype(int))
    ingest(engine, from_frame("ratings", by_item, 500))
    by_time = replace(RANKING, split="time")
    with pytest.raises(ValueError, match="has no rating of a user and an item the training"):
        train_and_register(engine, by_time, tmp_path, progress=False)
    assert list_versions(engine)[0].status == "failed"


def test_auto_is_a_blend_where_its_members_fit_and_one_model_beyond() -> None:
    ranking = TrainConfig(objective="ranking")
    assert ranking.resolved(1_000).model == "blend"
    assert ranking.resolved(1_000).members == ("ease", "ials")
    assert ranking.resolved(30_001).model == "ials"  # beyond EASE's d x d solve
    assert replace(ranking, epochs=3).resolved(1_000).model == "dot"  # asked for a schedule
    assert TrainConfig().resolved(1_000, 100_000).members == ("dot", "nn")
    assert TrainConfig().resolved(1_000, 1_000_000).model == "dot"  # nn would take minutes
    assert TrainConfig(lr=0.01).resolved(1_000, 100_000).model == "dot"
    assert replace(ranking, model="nn").resolved(1_000).model == "nn"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_big_catalogs_get_an_index_beside_the_artifact_that_serving_uses(
    engine: Engine, tmp_path: Path
) -> None:
    from recsys.collab.ann_index import index_path
    from recsys.serving.loading import load_version

    load_taste_groups(engine)
    small = replace(SMALL, objective="ranking")
    plain = train_and_register(engine, small, tmp_path, progress=False)
    assert not index_path(get_version(engine, plain.version_id).artifact_path).exists()
    indexed = train_and_register(engine, replace(small, ann_min_items=10), tmp_path, progress=False)
    version = get_version(engine, indexed.version_id)
    assert index_path(version.artifact_path).exists()
    served = load_version(engine, version).recommender
    assert served.item_index is not None
    assert len(served.recommend("u0", 3)) >= 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_blend_is_registered_as_one_artifact_served_like_any_model(
    engine: Engine, tmp_path: Path
) -> None:
    from recsys.serving.loading import load_version

    load_taste_groups(engine)
    config = TrainConfig(
        objective="ranking",
        model="blend",
        blend_weights=(0.5, 0.5),  # both kept, whatever the hold-out says
        n_factors=4,
        device="cpu",
    )
    result = train_and_register(engine, config, tmp_path, progress=False)
    version = get_version(engine, result.version_id)
    assert version.kind == "blend"
    assert version.metrics["members"] == ["ease", "ials"]
    assert version.metrics["blend_weights"] == [0.5, 0.5]
    assert [set(chosen) for chosen in version.metrics["member_settings"]] == [
        {"l2", "half_life"},
        {"epochs", "n_factors", "l2", "alpha", "half_life"},
    ]
    served = load_version(engine, version).recommender
    assert type(served.model).__name__ == "Blend"
    assert served.recommend("u0", 3).frame()["item_id"].tolist() == (
        result.fitted.served.recommend("u0", 3)["item_id"].tolist()
    )

    auto = train_and_register(engine, TrainConfig(objective="ranking"), tmp_path, progress=False)
    chosen = get_version(engine, auto.version_id)
    assert chosen.kind == auto.fitted.config.model  # the hold-out's pick, as it is served
    assert chosen.kind in ("blend", "ease", "ials")
    assert type(load_version(engine, chosen).recommender.model).__name__ == {
        "blend": "Blend", "ease": "EASE", "ials": "IALS"
    }[chosen.kind]  # fmt: skip


def test_the_batch_size_is_chosen_on_the_hold_out_bigger_only_where_it_holds() -> None:
    """Each candidate is the run with that batch size alone (same seed, same data): the
    kept one has the lowest hold-out RMSE, a bigger batch winning ties, and the refit
    trains in its batches. From a million ratings the rating dot model gets candidates."""
    from recsys.data.ratings import RatingsTable
    from recsys.jobs.training_job import fit_select_refit

    train, _ = taste_groups_with_unrated(n_users=60)
    table = RatingsTable.from_frame(train)
    config = TrainConfig(model="dot", epochs=3, n_factors=4, device="cpu")
    fitted = fit_select_refit(table, replace(config, batch_sizes=(256, 32)), progress=False)
    alone = {
        size: fit_select_refit(table, replace(config, batch_size=size, refit=False), False)
        for size in (32, 256)
    }
    rmse = {size: run.selected.served_metrics()["rmse"] for size, run in alone.items()}
    chosen = 256 if rmse[256] <= rmse[32] else 32
    assert rmse[32] != rmse[256]  # the choice is between two different fits
    assert fitted.settings["batch_size"] == chosen == fitted.config.batch_size
    assert fitted.selected.served_metrics()["rmse"] == rmse[chosen]
    assert fitted.served.dls.train.batch_size == chosen
    assert [c.batch_size for c in TrainConfig(model="dot").candidates(1_000_000)] == [
        4096,
        16_384,
    ]
    assert TrainConfig(model="dot").candidates(999_999) == [TrainConfig(model="dot")]
    assert len(TrainConfig(model="dot", batch_size=4096).candidates(10**7)) == 1


def test_the_ranking_dot_model_chooses_its_negatives_on_the_hold_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fewer negatives are cheaper: kept where the hold-out NDCG is no worse than with
    more, and the refit draws as many. (20 items: choices below that, or both would
    be the full softmax.)"""
    from recsys.data.ratings import RatingsTable
    from recsys.jobs.training_job import fit_select_refit

    config = TrainConfig(objective="ranking", model="dot", epochs=3, n_factors=4, device="cpu")
    assert [c.n_negatives for c in config.candidates(100)] == [512, 128]
    monkeypatch.setattr("recsys.jobs.training_job.NEGATIVES_CHOICES", (12, 2))
    train, _ = taste_groups_with_unrated(n_users=60)
    table = RatingsTable.from_frame(train)
    fitted = fit_select_refit(table, config, progress=False)
    alone = {
        n: fit_select_refit(table, replace(config, n_negatives=n, refit=False), False)
        for n in (12, 2)
    }
    ndcg = {n: run.selected.served_metrics()["ndcg"] for n, run in alone.items()}
    assert ndcg[12] != ndcg[2]
    chosen = 2 if ndcg[2] >= ndcg[12] else 12
    assert fitted.settings["n_negatives"] == chosen == fitted.config.n_negatives
    assert fitted.selected.served_metrics()["ndcg"] == ndcg[chosen]
    assert fitted.served.model.n_negatives == chosen
