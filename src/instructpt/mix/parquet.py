"""The mixed text as parquet, for training with other stacks (litgpt, Megatron, nanotron).

One parquet file per mix shard, same records in the same order, columns
`id`, `text`, `source`, `lineage` (list of strings). Loadable with
`datasets.load_dataset("parquet", data_files=".../parquet/*.parquet")`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from instructpt.core.atomic import atomic_open
from instructpt.core.manifest import require_manifest
from instructpt.core.shards import read_shard

PARQUET_DIR = "parquet"


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.string()),
            ("text", pa.string()),
            ("source", pa.string()),
            ("lineage", pa.list_(pa.string())),
        ]
    )


def write_parquet(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records atomically as one parquet file; returns the number of rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, list[Any]] = {"id": [], "text": [], "source": [], "lineage": []}
    for rec in records:
        for key, values in columns.items():
            values.append(rec[key])
    table = pa.table(columns, schema=_schema())
    with atomic_open(path) as fh:
        pq.write_table(table, fh, compression="zstd")
    return table.num_rows


def export_parquet(mix_dir: Path, out_dir: Path | None = None) -> list[Path]:
    """Export a finished mix directory's shards as parquet (default: `<mix_dir>/parquet/`)."""
    manifest = require_manifest(mix_dir, "mix")
    out_dir = out_dir if out_dir is not None else mix_dir / PARQUET_DIR
    paths = []
    for shard in manifest.shards:
        target = out_dir / shard.file.replace(".jsonl.zst", ".parquet")
        write_parquet(target, read_shard(mix_dir / shard.file))
        paths.append(target)
    return paths
