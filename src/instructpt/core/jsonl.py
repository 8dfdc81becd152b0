"""Strict JSON-lines reading for small input files (questions, eval files, leads).

Small files a user hands over whole (not corpora: `corpus.readers` skips and
counts bad lines instead) are all-or-nothing: the first bad line stops the
command with its file and line number, so the user fixes it once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from instructpt.errors import InputError


def read_jsonl_objects(path: Path, what: str = "") -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a UTF-8 JSON-lines file.

    Raises InputError naming `path:line` for a line that is not JSON or not an
    object, and naming `what` (e.g. "eval file") when the file is missing.
    """
    if not path.is_file():
        raise InputError(f"{what + ' ' if what else ''}{path} not found")
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{lineno}: expected a JSON object")
            yield lineno, row
