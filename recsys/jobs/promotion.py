"""The promotion gate: is a newly trained model better than the one being served?

The two are compared only on ratings neither was trained on: the new run's
hold-out (the latest ratings, which its selected model never saw) restricted to
ratings newer than the active version's data snapshot (its served model, refitted
on everything up to that snapshot, never saw those either). When fewer than
``MIN_COMPARED`` ratings (rating models) or users (ranking models) remain, the
comparison would be noise: the gate then promotes when the new run's hold-out
metric is no worse than the one recorded for the active version, and says so.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import Engine

from recsys.collab.collab_learner import CollabLearner
from recsys.collab.recommender import load_recommender
from recsys.jobs.model_versions import ModelVersion, active_version

MIN_COMPARED = 20


def unseen_by_active(learn: CollabLearner, active: ModelVersion) -> np.ndarray:
    """Which of ``learn``'s validation rows are newer than everything ``active`` was
    trained on (all False when its snapshot time or the rows' times are unknown)."""
    times = learn.data.valid_times
    latest = active.metrics.get("max_timestamp")
    if times is None or latest is None:
        return np.zeros(learn.data.dls.valid.n_rows, dtype=bool)
    return times > int(latest)


def compare_with_active(learn: CollabLearner, version: ModelVersion) -> tuple[float, float, int]:
    """The new model's and the active ``version``'s selection metric on the validation
    rows neither was trained on, on what both can answer, and how many ratings (or
    users) that is."""
    rows = unseen_by_active(learn, version)
    if not rows.any():
        return float("nan"), float("nan"), 0
    assert version.artifact_path is not None  # an active version has its weights
    return learn.compare_with(load_recommender(version.artifact_path), rows)


def decide(
    engine: Engine, learn: CollabLearner, promote: str, metrics: dict[str, object]
) -> tuple[bool, str]:
    """Whether to activate the new version per ``promote`` (auto, always, never), and why.

    ``auto`` follows the module's rule; the comparison is added to ``metrics``.
    """
    if promote == "always":
        return True, "--promote always"
    if promote == "never":
        return False, "--promote never"
    active = active_version(engine, learn.objective)
    if active is None or active.artifact_path is None:
        return True, f"no {learn.objective} version was active"
    new, old, n_compared = compare_with_active(learn, active)
    name, label = learn.selection_metric, learn.selection_label
    metrics["gate_compared"] = n_compared
    if n_compared >= MIN_COMPARED:
        metrics[f"gate_{name}"] = new
        metrics[f"gate_active_{name}"] = old
        better = new > old if learn.higher_is_better else new < old
        verdict = "beats" if better else "does not beat"
        return better, (
            f"{label} {new:.4f} {verdict} the active version's {old:.4f} on {n_compared} "
            f"{learn.compared_unit} newer than anything either was trained on"
        )
    recorded = active.metrics.get(name)
    held_out = float(metrics[name])  # type: ignore[arg-type]  # the hold-out metric is a number
    if recorded is None:
        return True, (
            f"only {n_compared} {learn.compared_unit} are newer than the active version's "
            f"data, and it recorded no {label}"
        )
    no_worse = held_out >= recorded if learn.higher_is_better else held_out <= recorded
    verdict = "is no worse than" if no_worse else "is worse than"
    return no_worse, (
        f"only {n_compared} {learn.compared_unit} are newer than the active version's data "
        f"(fewer than {MIN_COMPARED}): hold-out {label} {held_out:.4f} {verdict} the "
        f"{float(recorded):.4f} it recorded"
    )
