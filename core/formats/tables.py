"""Parquet and Arrow tables — one file, a folder of Parquet shards, or a folder written by
``datasets.Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` — read and written with pyarrow.

pyarrow is the optional ``parquet`` extra: without it, these files are refused with one line
naming the install command, and nothing else in the app needs it.

Rows come out as dicts (lists of ``{"role", "content"}`` structs as lists of dicts), each with
its place: the file (the shard) and its row number there. A shard's split comes from where it
lies — a ``DatasetDict`` split folder, or a Hugging Face shard name such as
``train-00000-of-00002.parquet`` or ``data/test/0000.parquet`` — and is given to rows that have
no ``split`` field of their own ("train…" → train; "test…", "valid…", "eval…", "dev…" → eval).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from core.formats.errors import FormatError, Place

PYARROW_MISSING = 'Parquet and Arrow files need pyarrow, which is not installed: pip install -e ".[parquet]"'
BATCH_ROWS = 2000
_SPLIT_PREFIX = re.compile(r"^(train|test|valid|validation|eval|dev)(?![a-z])", re.IGNORECASE)


@dataclass(frozen=True)
class TableSource:
    path: Path
    kind: str                # "parquet" | "arrow"
    split: str | None        # "train" / "eval" from where the shard lies, if it says


def require_pyarrow(path: Path) -> None:
    """Raises ``FormatError`` with the install command when pyarrow is missing."""
    _pyarrow(path)


def _pyarrow(path: Path):
    try:
        import pyarrow
        import pyarrow.ipc  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise FormatError(path, 0, None, PYARROW_MISSING) from None
    return pyarrow


def split_of(name: str) -> str | None:
    match = _SPLIT_PREFIX.match(name)
    if not match:
        return None
    return "train" if match.group(1).lower() == "train" else "eval"


def _dataset_folder(folder: Path, split: str | None) -> list[TableSource]:
    """The Arrow files of one ``Dataset.save_to_disk`` folder (listed in its state.json)."""
    try:
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        names = [entry["filename"] for entry in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FormatError(folder / "state.json", 0, None, f"not a readable datasets state.json ({exc})") from None
    return [TableSource(folder / name, "arrow", split) for name in names]


def table_sources(path: Path) -> tuple[str, list[TableSource]]:
    """(container label, the tables to read) for a Parquet/Arrow file or a folder of them."""
    if not path.is_dir():
        kind = "parquet" if path.suffix.lower() == ".parquet" else "arrow"
        return ("Parquet" if kind == "parquet" else "Arrow"), [TableSource(path, kind, None)]
    if (path / "dataset_dict.json").is_file():
        try:
            splits = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise FormatError(path / "dataset_dict.json", 0, None, f"not a readable dataset_dict.json ({exc})") from None
        sources = [s for name in splits for s in _dataset_folder(path / name, split_of(name))]
        return f"a datasets folder ({', '.join(splits)})", sources
    if (path / "state.json").is_file():
        return "a datasets folder", _dataset_folder(path, None)
    shards = sorted(p for p in path.rglob("*.parquet") if p.is_file())
    if shards:
        sources = [TableSource(p, "parquet", split_of(p.name) or split_of(p.parent.name) if p.parent != path
                               else split_of(p.name)) for p in shards]
        return f"a folder of {len(shards)} Parquet file{'s' if len(shards) != 1 else ''}", sources
    arrows = sorted(p for p in path.rglob("*.arrow") if p.is_file())
    if arrows:
        return f"a folder of {len(arrows)} Arrow file{'s' if len(arrows) != 1 else ''}", \
            [TableSource(p, "arrow", split_of(p.name)) for p in arrows]
    raise FormatError(path, 0, None, "a folder with no Parquet or Arrow files (nor the state.json or "
                      "dataset_dict.json of datasets' save_to_disk); give a file or such a folder")


def _open_table(pa, source: TableSource):
    """(row count, iterator of record batches) of one file; damage is a FormatError naming it."""
    try:
        if source.kind == "parquet":
            parquet = pa.parquet.ParquetFile(source.path)
            return parquet.metadata.num_rows, parquet.iter_batches(batch_size=BATCH_ROWS)
        with open(source.path, "rb") as f:
            is_file_format = f.read(6) == b"ARROW1"
        stream = pa.memory_map(str(source.path))
        reader = pa.ipc.open_file(stream) if is_file_format else pa.ipc.open_stream(stream)
        table = reader.read_all()
        return table.num_rows, iter(table.to_batches(max_chunksize=BATCH_ROWS))
    except FileNotFoundError:
        raise FormatError(source.path, 0, None, "no such file") from None
    except OSError as exc:
        if isinstance(exc, pa.ArrowException):
            raise FormatError(source.path, 0, None, f"not a readable {source.kind.title()} file: {exc}") from None
        raise FormatError(source.path, 0, None, f"cannot read: {exc.strerror or exc}") from None
    except pa.ArrowException as exc:
        raise FormatError(source.path, 0, None, f"not a readable {source.kind.title()} file: {exc}") from None


def table_rows(path: Path, progress: Callable[[int, int], None] | None = None) -> Iterator[tuple[Place, object]]:
    """Every row of a Parquet/Arrow file or folder, with its shard file and row number."""
    pa = _pyarrow(path)
    _, sources = table_sources(path)
    opened = [(source, *_open_table(pa, source)) for source in sources]
    total = sum(count for _, count, _ in opened)
    done = 0
    for source, _, batches in opened:
        number = 0
        try:
            for batch in batches:
                for row in batch.to_pylist():
                    number += 1
                    if source.split is not None and isinstance(row, dict) and row.get("split") in (None, ""):
                        row["split"] = source.split
                    yield Place(0, number, "row", source.path), row
                done += batch.num_rows
                if progress is not None:
                    progress(done, total)
        except pa.ArrowException as exc:
            raise FormatError(source.path, 0, None, f"not a readable {source.kind.title()} file: {exc}",
                              item=number + 1, unit="row") from None
    if progress is not None:
        progress(total, total)


def write_parquet(path: Path, rows: list[dict], columns: dict[str, str]) -> None:
    """Write ``rows`` as one Parquet file (``columns``: name -> "string" or "messages", a list of
    ``{"role", "content"}`` structs), to a temporary name moved into place."""
    pa = _pyarrow(path)
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    schema = pa.schema([(name, pa.string() if kind == "string" else pa.list_(message))
                        for name, kind in columns.items()])
    table = pa.Table.from_pylist(rows, schema=schema)
    temporary = path.with_name(f".{path.name}.partial")
    try:
        pa.parquet.write_table(table, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
