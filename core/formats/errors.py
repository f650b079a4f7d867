"""The one error a preference file can raise: where (file, line, field) and what is wrong."""

from __future__ import annotations

import os
from pathlib import Path


class FormatError(ValueError):
    """Bad input in a preference file. ``str()`` reads "FILE:LINE: field 'x': message"
    (without the field part when the problem is not in one field, e.g. malformed JSON)."""

    def __init__(self, path: str | os.PathLike, line: int, field: str | None, message: str):
        self.path = Path(path)
        self.line = line
        self.field = field
        self.message = message
        where = f"{self.path}:{line}: " if line else f"{self.path}: "
        what = f"field '{field}': " if field else ""
        super().__init__(f"{where}{what}{message}")
