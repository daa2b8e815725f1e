"""Models served from a file (tabular, vision): loaded on first use, reloaded when replaced.

Training writes a model file atomically (a temporary file renamed over the old
one), so a changed modification time means a complete new model: the next
request loads it and swaps it in, with no restart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from api.errors import ServiceError

Model = TypeVar("Model")


class ModelFile(Generic[Model]):
    """The model at ``path`` as ``load`` builds it, kept while the file is unchanged."""

    def __init__(self, path: Path, load: Callable[[Path], Model], what: str, train: str) -> None:
        self.path = path
        self._load = load
        self.what = what  # for errors: "tabular model"
        self.train = train  # the command that makes one
        self._lock = threading.Lock()
        self._model: Model | None = None
        self._stamp: tuple[int, int] | None = None

    def get(self) -> Model:
        """The current model; 503 naming the command to run when there is none."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            raise ServiceError(
                503, f"no_{self.what.replace(' ', '_')}", f"no {self.what} yet: run `{self.train}`"
            ) from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if self._model is None or stamp != self._stamp:
                self._model, self._stamp = self._load(self.path), stamp
            return self._model
