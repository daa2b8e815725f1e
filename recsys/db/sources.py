"""Read CSV or parquet files in bounded chunks, remembering where each row came from."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq


class IngestError(ValueError):
    """Bad input, with the file and (1-based) data row it was found in."""

    def __init__(self, source: str, problem: str, row: int | None = None) -> None:
        self.source = source
        self.problem = problem
        self.row = row
        where = f"{source}: row {row}" if row is not None else source
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Chunk:
    """A slice of a table; ``first_row`` is the 1-based data row of its first line."""

    frame: pd.DataFrame
    first_row: int


@dataclass
class TableSource:
    """A named table read chunk by chunk: a file on disk, or frames built in memory."""

    name: str
    columns: list[str]
    chunks: Iterator[Chunk]
    total_rows: int | None = None


def open_table(path: Path | str, chunk_rows: int) -> TableSource:
    """Open a CSV or parquet file for chunked reading, without loading it whole."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(str(path), "file not found")
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return _open_parquet(path, chunk_rows)
    if suffix in {".csv", ".tsv", ".txt"}:
        return _open_csv(path, chunk_rows, sep="\t" if suffix == ".tsv" else ",")
    raise IngestError(str(path), f"unsupported file type {suffix!r}: use .csv, .tsv or .parquet")


def from_frame(name: str, frame: pd.DataFrame, chunk_rows: int) -> TableSource:
    """Wrap an in-memory frame as a source (used for the bundled data and tests)."""

    def chunks() -> Iterator[Chunk]:
        for start in range(0, len(frame), chunk_rows):
            yield Chunk(frame.iloc[start : start + chunk_rows], first_row=start + 1)

    return TableSource(name, list(frame.columns), chunks(), total_rows=len(frame))


def _open_parquet(path: Path, chunk_rows: int) -> TableSource:
    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several types for unreadable files
        raise IngestError(str(path), f"not a readable parquet file ({error})") from error

    def chunks() -> Iterator[Chunk]:
        first_row = 1
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            frame = batch.to_pandas()
            yield Chunk(frame, first_row)
            first_row += len(frame)

    names = list(parquet.schema_arrow.names)
    _refuse_repeated_columns(str(path), names)
    return TableSource(str(path), names, chunks(), parquet.metadata.num_rows)


def _open_csv(path: Path, chunk_rows: int, sep: str) -> TableSource:
    # Everything is read as text so that validation, not the parser, decides what
    # a bad value is, and reports it with its row.
    options = {"sep": sep, "dtype": str, "keep_default_na": False, "skipinitialspace": True}
    try:
        with path.open(newline="", encoding="utf-8") as file:
            raw_header = next(csv.reader(file, delimiter=sep), [])
        header = pd.read_csv(path, nrows=0, **options)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise IngestError(str(path), f"cannot read CSV header ({error})") from error
    _refuse_repeated_columns(str(path), [name.strip() for name in raw_header])

    def chunks() -> Iterator[Chunk]:
        first_row = 1
        try:
            # The reader is closed even when ingestion stops early (the generator closes).
            with pd.read_csv(path, chunksize=chunk_rows, **options) as reader:
                for frame in reader:
                    yield Chunk(frame, first_row)
                    first_row += len(frame)
        except (pd.errors.ParserError, UnicodeDecodeError) as error:
            # pandas counts file lines from 1, the header included: line n is data row n - 1.
            line = re.search(r"line (\d+)", str(error))
            row = int(line.group(1)) - 1 if line else None
            raise IngestError(str(path), f"malformed CSV: {error}".strip(), row) from error

    return TableSource(str(path), list(header.columns), chunks())


def _refuse_repeated_columns(source: str, names: list[str]) -> None:
    """A column named twice is ambiguous: which one holds the ratings?"""
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in seen:
            raise IngestError(
                source,
                f"column {name!r} appears twice in the header (columns {seen[name]} and "
                f"{position}): rename one",
            )
        seen[name] = position
