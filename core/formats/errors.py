"""The one error a preference file can raise: where (file, line or item, field) and what is wrong."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Place:
    """Where a row is: the line it starts on in a text file, and for a JSON array or a table
    (Parquet, Arrow) its 1-based number among the items (``unit`` names them: "item", "row")."""


    line: int = 0
    item: int = 0
    unit: str = "item"
    source: Path | None = None   # the file the row is in, when not the one given (a shard of a folder)

    def describe(self) -> str:
        """ "line 3", "item 2 (line 1)", "row 7", or "" for the file as a whole."""
        if self.item and self.line:
            return f"{self.unit} {self.item} (line {self.line})"
        if self.item:
            return f"{self.unit} {self.item}"
        return f"line {self.line}" if self.line else ""


class FormatError(ValueError):
    """Bad input in a preference file. ``str()`` reads "FILE:LINE: field 'x': message", or
    "FILE: item 2 (line 1): field 'x': message" for an item of a JSON array, "FILE: row 7: ..."
    for a row of a Parquet/Arrow table (without the field part when the problem is not in one
    field, e.g. malformed JSON)."""

    def __init__(self, path: str | os.PathLike, line: int, field: str | None, message: str,
                 item: int = 0, unit: str = "item"):
        self.path = Path(path)
        self.line = line
        self.field = field
        self.message = message
        self.place = Place(line, item, unit)
        if item:
            where = f"{self.path}: {self.place.describe()}: "
        else:
            where = f"{self.path}:{line}: " if line else f"{self.path}: "
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}{what}{message}")

    @property
    def item(self) -> int:
        return self.place.item

    def report_line(self) -> str:
        """One line of a bad-rows report: "FILE:LINE:FIELD: message" (LINE is the row number for
        a table; an item of a JSON array is named after the message)."""
        number = self.line or self.place.item
        extra = f" ({self.place.unit} {self.place.item})" if self.place.item and self.line else ""
        return f"{self.path}:{number}:{self.field or ''}: {self.message}{extra}"
