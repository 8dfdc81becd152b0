"""Request-level replay cache: a finished request is never sent twice.

Keyed by a hash of everything that determines a completion: engine, model,
revision, the exact prompt token ids, decoding parameters and the format
version. Stored in SQLite (WAL mode, one commit per completion) next to the
run, outside the stage folder, so it survives a crash, a `--overwrite`, and
a config change that leaves some prompts the same (e.g. more rounds). A
rerun after a kill replays finished requests from here instead of paying
for them again. Values are JSON, never pickle.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import orjson

from instructpt.synth.engines.base import Completion


def request_key(identity: dict[str, Any], token_ids: tuple[int, ...]) -> str:
    """Hash of engine identity (name, model, revision, decoding, format) and prompt ids."""
    blob = orjson.dumps(identity, option=orjson.OPT_SORT_KEYS) + b"\0" + orjson.dumps(token_ids)
    return hashlib.sha256(blob).hexdigest()


class ReplayCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, timeout=60, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, value BLOB NOT NULL)"
        )
        self.hits = 0
        self.stores = 0

    def get(self, key: str) -> Completion | None:
        row = self.db.execute("SELECT value FROM completions WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        self.hits += 1
        return Completion(**orjson.loads(row[0]))

    def put(self, key: str, completion: Completion) -> None:
        value = orjson.dumps(
            {
                "text": completion.text,
                "finish_reason": completion.finish_reason,
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
                "detail": completion.detail,
            }
        )
        self.db.execute("INSERT OR REPLACE INTO completions VALUES (?, ?)", (key, value))
        self.stores += 1

    def close(self) -> None:
        self.db.close()
