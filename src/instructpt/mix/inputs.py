"""The inputs of `mix`, read as output-shaped records: {"id", "text", "source", "lineage"}.

Three pools, each read in units (one shard or one file) so that encoding can
run a unit per worker and resume unit by unit:
- `raw`: `Document` shards of the corpus stage; lineage is the document's own id.
- `instruct`: shards of the cook stage; a cooked record's `lineage` names the
  documents it replaces, and its `template` ids are kept.
- `general`: general instruction data, from stage directories or jsonl/parquet
  files. A record with `text` is used as is; `{question, response}` (also
  `answer`/`output`, or `instruction` [+ `input`] with `output`) becomes
  "{question} {response}" (DESIGN.md, "Recipes"); synthesizer training
  records `{context, pairs}` become the context, a blank line, and
  "{question} {answer}" per pair, blank-line separated, with no format tags.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructpt.core.manifest import read_manifest, require_manifest
from instructpt.core.runner import manifest_fingerprint
from instructpt.core.shards import hashed_id, read_shard
from instructpt.corpus.readers import Source, discover_sources, iter_source
from instructpt.errors import InputError

Record = dict[str, Any]


@dataclass(frozen=True)
class Unit:
    """One shard or file of one pool; picklable, so workers can take it."""

    pool: str  # raw | instruct | general
    path: str  # a stage shard, or the path of `source`
    source: Source | None = None  # set for general files read through corpus.readers


def stage_units(folder: Path, pool: str, what: str) -> tuple[list[Unit], str, int]:
    """Units of a finished stage directory: (units, fingerprint, number of records)."""
    manifest = require_manifest(folder, what)
    units = [Unit(pool, str(folder / s.file)) for s in manifest.shards]
    return units, manifest_fingerprint(manifest), manifest.num_records


def general_units(inputs: list[str]) -> tuple[list[Unit], list[Any]]:
    """Units of general instruction inputs (stage dirs or files), and their fingerprints."""
    units: list[Unit] = []
    prints: list[Any] = []
    for spec in inputs:
        folder = Path(spec)
        if folder.is_dir() and read_manifest(folder) is not None:
            found, fp, _ = stage_units(folder, "general", "general")
            units += found
            prints.append(fp)
            continue
        for source in discover_sources([spec]):
            units.append(Unit("general", source.path, source))
            prints.append(source.fingerprint())
    return units, prints


def iter_unit(unit: Unit) -> Iterator[Record]:
    """The records of one unit, in file order, shaped as mix output records."""
    if unit.pool == "raw":
        for doc in read_shard(Path(unit.path)):
            yield {"id": doc["id"], "text": doc["text"], "source": "raw", "lineage": [doc["id"]]}
    elif unit.pool == "instruct":
        for rec in read_shard(Path(unit.path)):
            out = {
                "id": rec["id"],
                "text": rec["text"],
                "source": "instruct",
                "lineage": list(rec.get("lineage") or []),
            }
            if rec.get("template") is not None:
                out["template"] = rec["template"]
            yield out
    elif unit.source is None:
        for position, rec in enumerate(read_shard(Path(unit.path)), 1):
            yield general_record(rec, unit.path, position)
    else:
        for raw in iter_source(unit.source):
            if raw.error is not None or not isinstance(raw.data, dict):
                raise InputError(f"{raw.location}: unreadable general record ({raw.error})")
            yield general_record(raw.data, unit.source.name, raw.position)


def _first(data: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def general_text(data: dict[str, Any]) -> str | None:
    """Plain text of a general instruction record, or None when it has no known shape."""
    if isinstance(data.get("text"), str):
        return data["text"]
    question = _first(data, "question", "instruction", "prompt")
    response = _first(data, "response", "answer", "output", "completion")
    if question is not None and response is not None:
        extra = _first(data, "input")
        return f"{question}\n{extra} {response}" if extra else f"{question} {response}"
    context, pairs = data.get("context"), data.get("pairs")
    if isinstance(context, str) and isinstance(pairs, list):
        rendered = [f"{p['question']} {p['answer']}" for p in pairs if isinstance(p, dict)]
        return "\n\n".join([context, *rendered])
    return None


def general_record(data: dict[str, Any], where: str, position: int | None) -> Record:
    text = general_text(data)
    if text is None:
        raise InputError(
            f"{where} record {position}: a general record needs `text`, "
            f"`question`+`response` (or `instruction`+`output`), or `context`+`pairs`; "
            f"got keys {sorted(data)}"
        )
    rid = data.get("id")
    rid = str(rid) if rid not in (None, "") else hashed_id(where, position)
    return {"id": rid, "text": text, "source": "general", "lineage": [rid]}
