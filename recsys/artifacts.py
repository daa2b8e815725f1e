"""Saving and loading one trained model: its class, config, weights and extra state.

A model file holds plain data only — the class name and config that rebuild the
model (see ``recsys.models.factory``), the ``state_dict``, the learner's extra
state (id maps, seen items, encoders) and free-form metadata — and is read with
``weights_only=True``, so loading never unpickles arbitrary objects. Writes go to
a temporary file renamed into place: a crash never leaves half a model behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from recsys.models.factory import build_model, model_config


@dataclass(frozen=True)
class Artifact:
    """A model rebuilt from its file, with what was saved beside it."""

    model: nn.Module
    extra: dict[str, Any]
    metadata: dict[str, Any]


def save_artifact(
    path: Path | str,
    model: nn.Module,
    extra: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (class, config, weights), ``extra`` and ``metadata`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": model_config(model),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra or {},
        "metadata": metadata or {},
    }
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        # Through a Python file, so that a failed write is an OSError somewhere in what
        # torch raises (ENOSPC: "No space left on device"); with a path name it is only
        # an opaque RuntimeError of its zip writer.
        with temporary.open("wb") as file:
            torch.save(payload, file)
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)  # never a half-written file left behind
        cause = _os_error_in(error)
        if cause is None:
            raise
        raise OSError(cause.errno, cause.strerror, str(path)) from error
    return path


def _os_error_in(error: BaseException | None) -> OSError | None:
    """The OSError that ``error`` is, or that it was raised while handling."""
    while error is not None and not isinstance(error, OSError):
        error = error.__cause__ or error.__context__
    return error


def read_payload(path: Path | str) -> dict[str, Any]:
    """The raw contents of a model file, without unpickling arbitrary objects. Its
    tensors are mapped from the file, not read (copied only if written to): the
    workers serving one file share its pages."""
    return torch.load(Path(path), map_location="cpu", weights_only=True, mmap=True)


def load_artifact(path: Path | str) -> Artifact:
    """Rebuild the model saved at ``path`` and load its weights."""
    payload = read_payload(path)
    with torch.device("meta"):  # no memory, no random initialisation: the file has it all
        model = build_model(payload["model"])
    model.load_state_dict(payload["state_dict"], assign=True)  # the mapped tensors themselves
    return Artifact(model, payload["extra"], payload.get("metadata", {}))
