"""The training job: hyper-parameters as a frozen dataclass, and database -> trained learner."""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, cast

import pandas as pd
import torch
from sqlalchemy import Engine

from recsys.collab.ann_index import ANN_MIN_ITEMS, build_beside
from recsys.collab.blend_learner import Member, RankingBlendLearner, RatingBlendLearner
from recsys.collab.collab_learner import CollabLearner, collab_learner
from recsys.collab.dataset import LARGE_BATCH_SIZES, LARGE_DATA_ROWS, CollabData, SplitName
from recsys.collab.hybrid import hybrid_learner
from recsys.collab.interactions import RatingsSnapshot
from recsys.collab.ranking import NEGATIVES_CHOICES, ranking_learner
from recsys.data.ratings import RatingsTable, latest_write, read_ratings
from recsys.data.splits import temporal_split
from recsys.db.identity import read_identity
from recsys.jobs.model_versions import (
    OBJECTIVES,
    fail_stale,
    fail_version,
    finish_version,
    heartbeats,
    start_version,
)
from recsys.jobs.promotion import decide
from recsys.models.ease import MAX_ITEMS as EASE_MAX_ITEMS
from recsys.serving.snapshot import write_snapshot
from recsys.train import distributed

MODEL_NAMES = ("auto", "dot", "nn", "ease", "ials", "blend", "hybrid")
# A blend's members when none are named, and the models each objective's blend takes.
BLEND_MEMBERS = {"ranking": ("ease", "ials"), "rating": ("dot", "nn")}
BLEND_ALLOWED = {"ranking": ("dot", "nn", "ease", "ials"), "rating": ("dot", "nn")}

ModelName = Literal["auto", "dot", "nn", "ease", "ials", "blend", "hybrid"]
Promote = Literal["auto", "always", "never"]  # see train_and_register


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; None means the model's tuned default.

    ``objective`` ``rating`` fits predicted ratings (RMSE); ``ranking`` fits what
    users choose and is validated by NDCG@10 (see recsys.collab.ranking). ``ease`` (solved
    in closed form: no epochs, lr or wd) and ``ials`` (alternating solves: epochs are
    sweeps) are ranking models only; ``hybrid`` (metadata too, see recsys.collab.hybrid)
    a rating model only. ``blend`` fits ``members`` (None: EASE and iALS to rank, dot
    and nn to rate) and weighs them on the hold-out (recsys.collab.blend_learner).
    ``auto`` is the best measured for the objective (see :meth:`resolved`).
    """

    objective: Literal["rating", "ranking"] = "rating"
    model: ModelName = "auto"
    n_factors: int | None = None
    layers: tuple[int, ...] | None = None
    epochs: int | None = None
    lr: float | None = None
    wd: float | None = None
    l2: float | None = None  # EASE's or iALS's ridge; None: chosen on the hold-out
    alpha: float | None = None  # iALS's confidence scale; None: chosen on the hold-out
    half_life: float | None = None  # EASE's and iALS's recency; None: chosen on the hold-out
    members: tuple[str, ...] | None = None  # a blend's model names
    blend_weights: tuple[float, ...] | None = None  # None: chosen on the hold-out
    member_settings: tuple[dict[str, Any], ...] | None = None  # what each member chose
    batch_size: int | None = None  # None: 512 (1024 to rank), or 4096 from 1M ratings
    # Batch sizes to choose from on the hold-out; None: LARGE_BATCH_SIZES for the rating
    # dot model from LARGE_DATA_ROWS ratings (with no batch_size given), else none.
    batch_sizes: tuple[int, ...] | None = None
    # The ranking dot and nn models' sampled negatives per batch; None: chosen on the
    # hold-out from NEGATIVES_CHOICES.
    n_negatives: int | None = None
    valid_pct: float = 0.1
    # cutoff: per user, their ratings after one cutoff in time, or their latest before
    # it (chosen with benchmarks/selection.py); time: the latest valid_pct of all
    # ratings; temporal: each user's latest; random. See recsys.data.splits.
    split: SplitName = "cutoff"
    # Refit on every rating with the settings chosen on the hold-out (see fit_select_refit).
    refit: bool = True
    seed: int = 42
    # Catalogs from this size get an approximate-search index beside the artifact.
    ann_min_items: int = ANN_MIN_ITEMS
    y_range: tuple[float, float] = (0.0, 5.5)
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be rating or ranking, not {self.objective!r}")
        if self.model not in MODEL_NAMES:
            raise ValueError(f"model must be {', '.join(MODEL_NAMES)}, not {self.model!r}")
        if self.model in ("ease", "ials") and self.objective != "ranking":
            raise ValueError(
                f"{self.model} ranks items and predicts no ratings: use objective ranking"
            )
        if self.model == "hybrid" and self.objective != "rating":
            raise ValueError("hybrid is a rating model: use objective rating")
        schedule = {"epochs": self.epochs, "lr": self.lr, "wd": self.wd}
        if self.model == "ease":
            given = [name for name, value in schedule.items() if value is not None]
            if given:
                raise ValueError(
                    f"ease is solved in closed form: {', '.join(given)} do not apply (use l2)"
                )
        if self.model == "ials":
            given = [name for name in ("lr", "wd") if schedule[name] is not None]
            if given:
                raise ValueError(
                    f"ials is solved by alternating least squares: {', '.join(given)} do not "
                    "apply (use epochs = sweeps, l2, alpha)"
                )
        if self.model == "blend":
            self._check_blend()
        elif self.members is not None:
            raise ValueError(f"members make a blend: use model blend, not {self.model}")

    def _check_blend(self) -> None:
        members = self.members or BLEND_MEMBERS[self.objective]
        allowed = BLEND_ALLOWED[self.objective]
        wrong = [name for name in members if name not in allowed]
        if wrong or len(members) < 2:
            raise ValueError(
                f"a {self.objective} blend takes two or more of {', '.join(allowed)}, "
                f"not {', '.join(members)}"
            )
        for name, value in (
            ("blend_weights", self.blend_weights),
            ("member_settings", self.member_settings),
        ):
            if value is not None and len(value) != len(members):
                raise ValueError(f"{len(members)} blend members need {len(members)} {name}")

    def resolved(self, n_items: int, n_ratings: int = 0) -> TrainConfig:
        """``auto`` made concrete for ``n_ratings`` ratings of ``n_items`` items.

        To rank: a blend of EASE and iALS while EASE's d x d solve fits in memory (the
        weights are chosen on the hold-out, and either may get 0, which serves the other
        alone), iALS above that, the dot ranking model when epochs, a learning rate,
        weight decay, factors or layers are given. To rate: a blend of dot and nn
        (weighed the same way) below ``LARGE_DATA_ROWS`` ratings, where both fit in
        seconds; dot above that, or when a schedule is given. A blend without members
        gets the objective's (``BLEND_MEMBERS``). See benchmarks/ranking.py and
        benchmarks/collab.py for the figures.
        """
        if self.model == "blend" and self.members is None:
            return replace(self, members=BLEND_MEMBERS[self.objective])
        if self.model != "auto":
            return self
        factor_settings = (self.epochs, self.lr, self.wd, self.n_factors, self.layers)
        if any(value is not None for value in factor_settings):
            return replace(self, model="dot")
        if self.objective == "rating":
            if n_ratings < LARGE_DATA_ROWS:
                return replace(self, model="blend", members=BLEND_MEMBERS["rating"])
            return replace(self, model="dot")
        if n_items <= EASE_MAX_ITEMS:
            return replace(self, model="blend", members=BLEND_MEMBERS["ranking"])
        return replace(self, model="ials")

    def candidates(self, n_ratings: int) -> list[TrainConfig]:
        """The configs fitted and compared on the hold-out, costliest first (a later one
        is kept only where it is no worse): the rating dot model's batch sizes (see
        ``batch_sizes``), the ranking dot and nn models' numbers of negatives, or this
        config alone."""
        sizes = self.batch_sizes
        if sizes is None and self.batch_size is None and self.model == "dot":
            large = self.objective == "rating" and n_ratings >= LARGE_DATA_ROWS
            sizes = LARGE_BATCH_SIZES if large else None
        if sizes:
            return [replace(self, batch_size=size, batch_sizes=None) for size in sorted(sizes)]
        sampled = self.objective == "ranking" and self.model in ("dot", "nn")
        if sampled and self.n_negatives is None:
            return [replace(self, n_negatives=n) for n in NEGATIVES_CHOICES]
        return [self]

    def chose(self, settings: dict[str, Any]) -> TrainConfig:
        """This config with the ``settings`` chosen on the hold-out: the served model's.
        A blend that kept one member alone is that member's config."""
        if settings.get("model", "blend") != "blend":
            return replace(self, members=None, blend_weights=None, member_settings=None, **settings)
        return replace(self, **settings)

    def member(self, index: int) -> TrainConfig:
        """The config of a blend's member ``index``: the blend's, as that model, with the
        settings it chose when it was chosen."""
        assert self.members is not None
        settings = self.member_settings[index] if self.member_settings else {}
        return replace(
            self,
            model=cast(ModelName, self.members[index]),
            members=None,
            blend_weights=None,
            member_settings=None,
            **settings,
        )


@dataclass(frozen=True)
class FittedModel:
    """The two stages of a training run.

    ``selected`` was fitted on the training part and chose its ``settings`` (epochs,
    ridges, half-lives, a blend's weights, or which candidate ``auto`` serves) on the
    hold-out: its validation metrics are the run's metrics, and the promotion gate
    judges it. ``served`` was fitted from scratch on every rating with those settings,
    and is the model that is saved and served; without a refit it is ``selected``
    itself. ``config`` is the served model's: the run's, with ``auto`` resolved and
    the settings chosen.
    """

    selected: CollabLearner
    served: CollabLearner
    settings: dict[str, Any]
    config: TrainConfig


def fit_select_refit(
    table: RatingsTable, config: TrainConfig, progress: bool = True
) -> FittedModel:
    """Fit on the training part, choose the epoch count (or EASE's half-life) on the
    hold-out, then refit on all of ``table`` with them (one code path for the job and
    the benchmarks).

    Serving the model of stage one would leave the hold-out unlearned: with a time
    cutoff, those are everyone's latest ratings, the ones that say most about what
    they do next.
    """
    config = config.resolved(len(table.item_map), len(table))
    torch.manual_seed(config.seed)
    data = CollabData.from_table(
        table,
        valid_pct=config.valid_pct,
        seed=config.seed,
        split=config.split,
        batch_size=config.batch_size,
    )
    if data.dls.valid.n_rows == 0:
        raise ValueError(
            f"the {config.split} hold-out ({config.valid_pct:.0%} of {len(table):,} ratings) "
            "has no rating of a user and an item the training part knows: nothing to choose "
            "on; hold out more (--valid-pct) or split otherwise (--split)"
        )
    selected, settings = _fit_candidates(data, table, config, progress)
    refit = config.chose(settings)
    if not config.refit:
        return FittedModel(selected, selected, settings, refit)
    torch.manual_seed(config.seed)
    everything = CollabData.from_table(
        table,
        valid_pct=0.0,
        seed=config.seed,
        batch_size=refit.batch_size or data.dls.train.batch_size,
    )
    served = build_learner(everything, table, refit, progress)
    fit(served, refit)
    return FittedModel(selected, served, settings, refit)


def _fit_candidates(
    data: CollabData, table: RatingsTable, config: TrainConfig, progress: bool
) -> tuple[CollabLearner, dict[str, Any]]:
    """Fit each of ``config``'s candidates on the training part (each from the run's
    seed) and keep the best on the hold-out; a later (cheaper) candidate replaces an
    earlier one only when it is no worse. The kept learner and its settings."""
    candidates = config.candidates(len(table))
    chosen = [  # the settings the candidates differ in
        name
        for name in ("batch_size", "n_negatives")
        if len({getattr(candidate, name) for candidate in candidates}) > 1
    ]
    kept: CollabLearner | None = None
    settings: dict[str, Any] = {}
    for candidate in candidates:
        torch.manual_seed(config.seed)
        learner = build_learner(data, table, candidate, progress)
        fit(learner, candidate)
        if kept is None or _no_worse(learner, kept):
            kept = learner
            settings = learner.chosen_settings()
            settings |= {name: getattr(candidate, name) for name in chosen}
    assert kept is not None
    return kept, settings


def _no_worse(learner: CollabLearner, than: CollabLearner) -> bool:
    metric = learner.selection_metric
    score, other = learner.served_metrics()[metric], than.served_metrics()[metric]
    return score >= other if learner.higher_is_better else score <= other


def describe_settings(settings: dict[str, Any]) -> str:
    """What a run chose, for people: ``epochs 8`` or ``blend of ease (l2 500, …) x 0.4
    and ials (…) x 0.6``."""
    if settings.get("model") == "blend":
        members = [
            f"{name} ({describe_settings(chosen)}) x {weight:g}"
            for name, chosen, weight in zip(
                settings["members"],
                settings["member_settings"],
                settings["blend_weights"],
                strict=True,
            )
        ]
        return "a blend of " + " and ".join(members)
    return ", ".join(
        f"{name} {value:g}" if isinstance(value, int | float) else f"{name} {value}"
        for name, value in settings.items()
    )


def fit(learner: CollabLearner, config: TrainConfig) -> None:
    """Fit with ``config``'s schedule (a blend's members take theirs from it)."""
    learner.fit_one_cycle(**schedule(config))


def schedule(config: TrainConfig) -> dict[str, Any]:
    """``fit_one_cycle``'s arguments for ``config``: none for a blend, which fits its
    members with theirs."""
    if config.model == "blend":
        return {}
    return {"n_epoch": config.epochs, "lr_max": config.lr, "wd": config.wd}


def fit_and_test(
    table: RatingsTable, config: TrainConfig, test_pct: float = 0.2
) -> tuple[FittedModel, pd.DataFrame]:
    """Offline evaluation without choosing on what is reported: hold out each user's
    latest ``test_pct`` as the test part, run :func:`fit_select_refit` on the rest
    (its own hold-out carved from it), and return the fitted run and the test part."""
    split = temporal_split(table.users.numpy(), table.timestamps.numpy(), test_pct)
    fitted = fit_select_refit(table.take(split.train), config, progress=False)
    return fitted, table.take(split.valid).frame()


def read_training_table(engine: Engine, config: TrainConfig) -> RatingsTable:
    """Every rating (with metadata for a hybrid model); an error when there are none."""
    table = read_ratings(engine, with_metadata=config.model == "hybrid")
    if len(table) == 0:
        raise ValueError("the database has no ratings: load some first (recsys load / ingest)")
    return table


def train_from_database(engine: Engine, config: TrainConfig, progress: bool = True) -> FittedModel:
    """Read all ratings, then :func:`fit_select_refit`."""
    return fit_select_refit(read_training_table(engine, config), config, progress)


def build_learner(
    data: CollabData, table: RatingsTable, config: TrainConfig, progress: bool = True
) -> CollabLearner:
    """The factory from names: the learner that ``config``'s objective and model name."""
    options: dict[str, Any] = {"device": config.device, "progress": progress}
    if config.model == "blend":
        assert config.members is not None  # resolved
        members = []
        for index, name in enumerate(config.members):
            member = config.member(index)
            learner = build_learner(data, table, member, progress=False)
            members.append(Member(name, learner, schedule(member)))
        blend = RankingBlendLearner if config.objective == "ranking" else RatingBlendLearner
        return blend(data, members, config.blend_weights, **options)
    if config.objective == "ranking":
        return ranking_learner(
            data,
            model=config.model,  # type: ignore[arg-type]  # a ranking model's name here (TrainConfig checks it)
            n_factors=config.n_factors,
            layers=config.layers,
            l2=config.l2,
            half_life=config.half_life,
            alpha=config.alpha,
            batch_size=config.batch_size,
            n_negatives=config.n_negatives,
            **options,
        )
    if config.model == "hybrid":
        assert table.user_metadata is not None
        assert table.item_metadata is not None
        return hybrid_learner(
            data,
            table.user_metadata.rename(columns={"external_id": "user_id"}),
            table.item_metadata.rename(columns={"external_id": "item_id"}),
            layers=config.layers,
            y_range=config.y_range,
            **options,
        )
    if config.batch_size is not None and config.batch_size != data.dls.train.batch_size:
        data = data.with_batch_size(config.batch_size, config.seed)
    return collab_learner(
        data,
        n_factors=config.n_factors,
        y_range=config.y_range,
        use_nn=config.model == "nn",
        layers=config.layers,
        **options,
    )


def data_snapshot(table: RatingsTable) -> dict[str, int]:
    """What the run trained on: how many ratings, up to which time. Taken from the rows
    read, not from a query beside them: a rating written between the two would be
    trained on yet newer than the snapshot, and the gate would judge on it."""
    return {"n_ratings": len(table), "max_timestamp": int(table.timestamps.max())}


def library_versions() -> dict[str, str]:
    """The versions that produced an artifact, for whoever loads it later."""
    return {name: metadata.version(name) for name in ("recsys", "torch", "numpy", "pandas")} | {
        "python": platform.python_version()
    }


def remove_weights(folder: Path, version_id: int) -> None:
    """Remove the files of a version that never became ready (weights, search index)."""
    for path in folder.glob(f"{version_id}-*"):
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class TrainResult:
    """A finished run: its version, whether it is now served, and why."""

    version_id: int
    fitted: FittedModel
    promoted: bool
    reason: str
    metrics: dict[str, object] = field(default_factory=dict)  # as stored with the version


def train_and_register(
    engine: Engine,
    config: TrainConfig,
    artifact_dir: Path,
    progress: bool = True,
    promote: Promote = "always",
) -> TrainResult:
    """Train, save the weights as a new model version, and promote it per ``promote``.

    ``auto`` activates the new version only if it beats the active version of its
    objective on the same held-out data (RMSE for rating, NDCG@10 for ranking);
    ``always`` and ``never`` do what they say.
    The version row is written first (``training``) so that a run that dies is
    visible as ``failed`` afterwards; the weights file is written atomically.
    Under ``torchrun`` every rank trains its shard and rank 0 alone evaluates,
    writes the weights and registers the version.
    """
    context = distributed.current()
    if context is not None and not context.is_main:
        # Under torchrun, the other ranks only train their shard; rank 0 does the rest.
        return TrainResult(
            0,
            train_from_database(engine, config, progress=False),
            False,
            f"rank {context.rank} trains; rank 0 registers",
        )
    database = read_identity(engine)
    folder = artifact_dir / "versions" / database
    for stale in fail_stale(engine):  # killed after writing its weights, never registered
        remove_weights(folder, stale)
    started = time.perf_counter()
    version_id = start_version(engine, config.model, asdict(config), config.objective)
    try:
        with heartbeats(engine, version_id):
            # The write number first: a rating written during the read is followed
            # later by the workers serving the version, never missed.
            through = latest_write(engine)
            table = read_training_table(engine, config)
            snapshot = data_snapshot(table)
            fitted = fit_select_refit(table, config, progress)
        metadata = {
            "database": database,  # checked when the file is loaded
            "version_id": version_id,
            "config": asdict(config),
            "data": snapshot,
            "refit_settings": fitted.settings,
            "libraries": library_versions(),
        }
        name = f"{version_id}-{config.objective}-{fitted.config.model}.pt"
        path = fitted.served.save(folder / name, metadata)
        build_beside(fitted.served.scoring_model, path, config.ann_min_items)
        # What a worker needs besides the weights, so that it never reads every rating.
        write_snapshot(RatingsSnapshot(through, table), path, version_id, database)
        selected = fitted.selected
        metrics: dict[str, object] = dict(selected.served_metrics())  # the hold-out's verdict
        metrics["n_train"] = selected.data.dls.train.n_rows
        metrics["n_valid"] = selected.data.dls.valid.n_rows
        metrics["refit"] = fitted.served is not selected
        metrics["n_served_model_ratings"] = fitted.served.data.dls.train.n_rows
        metrics.update(fitted.settings)
        metrics.update(snapshot)
        metrics["trained_through"] = through  # what a later erasure is checked against
        promoted, reason = decide(engine, selected, promote, metrics)
        metrics["promotion"] = reason
        metrics["duration_seconds"] = round(time.perf_counter() - started, 3)
        finish_version(
            engine, version_id, metrics, path, activate=promoted, kind=fitted.config.model
        )
    except BaseException as error:  # Ctrl-C and SIGTERM too (see recsys.cli)
        remove_weights(folder, version_id)
        fail_version(engine, version_id, f"{type(error).__name__}: {error}")
        raise
    return TrainResult(version_id, fitted, promoted, reason, metrics)
