"""Sample pairs for the annotation-screen tests, benchmark and screenshots.

Real records through ``storage.ingest.import_records`` (the importer the app uses), with a
long Markdown answer holding code so rendering costs what it costs in real use.
"""

from __future__ import annotations

from storage.ingest import ImportRecord, import_records
from storage.workspace import Workspace

LONG_MARKDOWN = """\
Here is a version that reads the file **lazily**, so memory stays flat even for multi-gigabyte logs.

### Approach

1. Open the file once and iterate line by line — Python buffers the reads for you.
2. Parse each line with a compiled regular expression instead of `str.split`.
3. Count with `collections.Counter`, which is implemented in C.

```python
import re
from collections import Counter
from pathlib import Path

LINE = re.compile(r"^(?P<ip>\\S+) .*? \\"(?P<method>GET|POST) (?P<path>\\S+)")


def top_paths(log: Path, n: int = 10) -> list[tuple[str, int]]:
    \"\"\"The n most requested paths in an access log.\"\"\"
    counts: Counter[str] = Counter()
    with log.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            match = LINE.match(line)
            if match:
                counts[match["path"]] += 1
    return counts.most_common(n)
```

### Why it is faster

- The regular expression is compiled **once**, outside the loop.
- `errors="replace"` means one bad byte does not abort a 3 GB scan.
- `most_common(n)` uses a heap, so it is `O(m log n)` rather than sorting every path.

> If the log is compressed, swap `log.open(...)` for `gzip.open(log, "rt")` — nothing else changes.

For a 2.1 GB log this runs in about 14 s on a laptop, against 52 s for the version that
calls `readlines()` first.
"""

SHORT_MARKDOWN = """\
You can just read everything and split it:

```python
def top_paths(log, n=10):
    data = open(log).readlines()
    paths = [l.split()[6] for l in data]
    return sorted(set(paths), key=paths.count, reverse=True)[:n]
```

This works for any log file.
"""

CHAT_PROMPT = [
    {"role": "system", "content": "You are a careful senior Python engineer."},
    {"role": "user", "content": "I have a 2 GB nginx access log. How do I find the 10 most requested paths "
                                "in Python without running out of memory?"},
]


def sample_records(n: int, start: int = 0, long_every: int = 0) -> list[ImportRecord]:
    """``n`` unlabelled two-response records with distinct, readable texts; with ``long_every``
    k > 0, every k-th record is a chat prompt with the long Markdown answer (code, lists)."""
    records = []
    for i in range(start, start + n):
        if long_every and i % long_every == 0:
            records.append(ImportRecord(
                prompt=CHAT_PROMPT + [{"role": "user", "content": f"(variant {i})"}],
                responses=[LONG_MARKDOWN + f"\nVariant {i}.", SHORT_MARKDOWN + f"\nVariant {i}."],
                line=i + 1))
            continue
        records.append(ImportRecord(
            prompt=f"Question {i}: how should I store {i % 7 + 2} kinds of fruit for a week?",
            responses=[f"Answer A{i}: keep them **dry** and apart; bananas ripen the others.",
                       f"Answer B{i}: put everything in the fridge, it always works."],
            line=i + 1))
    return records


def add_sample_pairs(ws: Workspace, n: int, source: str = "samples.jsonl") -> list[int]:
    """Import ``n`` sample pairs; returns their pair ids in row order."""
    return import_records(ws, sample_records(n), source).pair_ids


def add_showcase_pair(ws: Workspace) -> int:
    """The screenshot pair: a chat prompt, a long Markdown answer with code, and a weaker one."""
    summary = import_records(ws, [ImportRecord(prompt=CHAT_PROMPT, responses=[LONG_MARKDOWN, SHORT_MARKDOWN])],
                             "python-help.jsonl")
    return summary.pair_ids[0]
