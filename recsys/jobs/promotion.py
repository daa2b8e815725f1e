"""The promotion gate: is a newly trained model better than the one being served?"""

from __future__ import annotations

from sqlalchemy import Engine

from recsys.collab.collab_learner import CollabLearner
from recsys.collab.recommender import load_recommender
from recsys.jobs.model_versions import active_version


def compare_with_active(engine: Engine, learn: CollabLearner) -> tuple[float, float, int] | None:
    """The new model's and the active one's selection metric on the new held-out data,
    on what both can answer, and how many ratings (or users) that is; None when no
    version of the learner's objective is active (see ``CollabLearner.compare_with``)."""
    version = active_version(engine, learn.objective)
    if version is None or version.artifact_path is None:
        return None
    return learn.compare_with(load_recommender(version.artifact_path))


def decide(
    engine: Engine, learn: CollabLearner, promote: str, metrics: dict[str, float]
) -> tuple[bool, str]:
    """Whether to activate the new version per ``promote`` (auto, always, never), and why.

    ``auto`` activates it only if it beats the active version of its objective on the
    same held-out data; the active version's score is added to ``metrics``.
    """
    if promote == "always":
        return True, "--promote always"
    if promote == "never":
        return False, "--promote never"
    comparison = compare_with_active(engine, learn)
    if comparison is None:
        return True, f"no {learn.objective} version was active"
    new, old, n_compared = comparison
    name = learn.selection_metric
    metrics[f"active_{name}_on_this_split"] = old
    if n_compared == 0:
        return True, "the active version knows none of the validation users and items"
    better = new > old if learn.higher_is_better else new < old
    verdict = "beats" if better else "does not beat"
    return better, (
        f"valid {learn.selection_label} {new:.4f} {verdict} the active version's {old:.4f} "
        f"on the same {n_compared} {learn.compared_unit}"
    )
