"""A real shard-to-shard stage run as a separate process, so tests can kill -9 it.

The stage upper-cases texts and drops every seventh record, counting drops;
`--delay` slows each record so a kill lands mid-shard.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from instructpt.core.config import StageConfig
from instructpt.core.runner import run_map_stage


class UpperConfig(StageConfig):
    drop_every: int = 7


def upper(
    records: Iterator[dict[str, Any]], stats: Counter[str], delay: float = 0.0
) -> Iterator[dict[str, Any]]:
    for rec in records:
        if delay:
            time.sleep(delay)
        if int(rec["id"].rsplit("-", 1)[1]) % 7 == 0:
            stats["dropped_every_seventh"] += 1
            continue
        yield {**rec, "text": rec["text"].upper()}


if __name__ == "__main__":
    in_dir, out_dir, delay = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    manifest, done = run_map_stage(
        "upper", in_dir, out_dir, lambda r, s: upper(r, s, delay), UpperConfig(), progress=False
    )
    print("already complete" if done else f"wrote {manifest.num_records}")
