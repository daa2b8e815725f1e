"""Models served from a file (tabular, vision): loaded on first use, reloaded when replaced.

Training writes a model file atomically (a temporary file renamed over the old
one), so a changed modification time means a complete new model: the next
request loads it and swaps it in, with no restart. A file that does not load
is logged and the model loaded before keeps serving.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from api.errors import ServiceError

Model = TypeVar("Model")
logger = logging.getLogger("recsys.api")


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
        self._error: str | None = None

    def get(self) -> Model:
        """The current model; 503 naming the command to run when there is none."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            raise ServiceError(
                503, f"no_{self.what.replace(' ', '_')}", f"no {self.what} yet: run `{self.train}`"
            ) from None
        except OSError as error:  # e.g. RECSYS_ARTIFACT_DIR names a file
            raise ServiceError(
                503,
                "artifact_storage_unavailable",
                f"the {self.what} at {self.path} cannot be read: {error.strerror}",
            ) from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp  # tried once per version of the file
                try:
                    self._model = self._load(self.path)
                except Exception as error:  # a damaged or foreign file: keep what we had
                    self._error = f"{type(error).__name__}: {error}"
                    logger.exception("%s %s does not load", self.what, self.path)
                else:
                    self._error = None
            if self._model is None:
                raise ServiceError(
                    503,
                    f"{self.what.replace(' ', '_')}_unloadable",
                    f"the {self.what} at {self.path} does not load ({self._error}): "
                    f"train it again with `{self.train}`",
                )
            return self._model
