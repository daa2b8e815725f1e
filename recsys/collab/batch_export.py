"""Everyone's recommendations at once: for e-mail campaigns, or a cache in front of
the service.

The same answers as the API — the served recommender's one ranking path, seen and
hidden items left out — computed a chunk of users at a time and written as they
come, so memory stays bounded by one chunk whatever the user count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys.collab.recommender import Recommender

CHUNK_USERS = 1024


@dataclass(frozen=True)
class ExportReport:
    users: int
    rows: int
    seconds: float


def export_recommendations(
    recommender: Recommender,
    path: Path,
    n: int = 10,
    chunk_users: int = CHUNK_USERS,
    on_chunk: Callable[[int], None] | None = None,
) -> ExportReport:
    """Write every known user's top-``n`` to ``path`` (``.parquet`` or ``.csv``): one row
    per (user_id, rank, item_id, score), best first; ``on_chunk(users done)`` after
    each chunk. Written to a temporary file, then renamed: never half a file."""
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ValueError(f"export to .parquet or .csv, not {path.name!r}")
    started = time.perf_counter()
    user_ids = recommender.user_map.present_ids()  # erased users are not exported
    partial = path.with_name(f".{path.name}.partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.Table.from_pandas(_rows(user_ids[:0], []), preserve_index=False).schema
    writer = pq.ParquetWriter(partial, schema) if suffix == ".parquet" else None
    if writer is None:
        _rows(user_ids[:0], []).to_csv(partial, index=False)  # the header
    rows = 0
    try:
        for start in range(0, len(user_ids), chunk_users):
            chunk = user_ids[start : start + chunk_users]
            frame = _rows(chunk, recommender.recommend_many(list(chunk), n))
            rows += len(frame)
            if writer is None:
                frame.to_csv(partial, mode="a", header=False, index=False)
            else:
                writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
            if on_chunk is not None:
                on_chunk(min(start + chunk_users, len(user_ids)))
        if writer is not None:
            writer.close()
            writer = None
        partial.replace(path)
    finally:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
    return ExportReport(len(user_ids), rows, time.perf_counter() - started)


def _rows(user_ids: np.ndarray, tops: list) -> pd.DataFrame:
    counts = [len(top.item_ids) for top in tops]
    return pd.DataFrame(
        {
            "user_id": np.repeat(np.asarray(user_ids, dtype=object).astype(str), counts),
            "rank": np.concatenate(
                [np.arange(1, c + 1) for c in counts] or [np.empty(0, dtype=np.int64)]
            ).astype(np.int32),
            "item_id": np.concatenate([top.item_ids for top in tops] or [[]]).astype(str),
            "score": np.concatenate([top.scores for top in tops] or [[]]).astype(np.float32),
        }
    )
