"""The `tokenize` stage: mixed text shards in, flat token shards plus an index out.

For each mix shard `shard-NNNNN.jsonl.zst` it writes
- `tokens-NNNNN.npy`: every record's tokens back to back, each framed by the
  tokenizer's BOS/EOS (see `pack.tokenizer.frame_ids`), uint16 when the
  vocabulary fits, else uint32; loadable with `np.load(..., mmap_mode="r")`;
- `tokens-NNNNN.index.json`: record ids and their token offsets in that file
  (record i is tokens[offsets[i]:offsets[i+1]], BOS/EOS included); written
  after the tokens, it is also the shard's done marker;
and, last, `index.json` (shards in order, their token counts, dtype, BOS/EOS,
`seq_len`) and the manifest.

Packing: the shards, concatenated in order, form one token stream that
`pack.reader.PackedTokens` cuts into fixed-length sequences of `seq_len`
(documents run across sequence boundaries, as in GPT-style pre-training; the
last partial sequence is left out and counted as `tail_tokens`). Keeping the
stream flat means shards are packed independently (in parallel, resumable one
by one) and a reader may choose another length without re-tokenizing.

Shards are processed in parallel (one process per shard, `num_workers`).
When the mix stage kept a token cache made with the same tokenizer (same
fingerprint), the ids are read from it instead of encoding the text again;
the output is byte-identical either way.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from tqdm import tqdm

from instructpt.core.atomic import atomic_write_bytes
from instructpt.core.executor import Executor
from instructpt.core.manifest import Manifest, ShardInfo, require_manifest
from instructpt.core.parallel import map_ordered
from instructpt.core.resume import open_stage_dir
from instructpt.core.runner import manifest_fingerprint
from instructpt.core.shards import read_shard
from instructpt.core.tokenizers import TokenizerSpec, encode_texts, frame_ids, load_tokenizer_spec
from instructpt.errors import InputError
from instructpt.mix.stage import cache_name
from instructpt.pack.config import TokenizeConfig

STAGE = "tokenize"
INDEX_NAME = "index.json"
INDEX_VERSION = 1
ENCODE_BATCH = 1024


def token_file(k: int) -> str:
    return f"tokens-{k:05d}.npy"


def index_file(k: int) -> str:
    return f"tokens-{k:05d}.index.json"


@dataclass(frozen=True)
class PackTask:
    text_shard: str  # mix shard-NNNNN.jsonl.zst
    cache: str  # mix shard-NNNNN.tokens.npz (may not exist)
    records: int  # records the mix manifest promises
    out_tokens: str
    out_index: str
    spec: TokenizerSpec
    use_cache: bool


def _ids_from_cache(task: PackTask) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    if not task.use_cache or not Path(task.cache).is_file():
        return None
    with np.load(task.cache) as data:
        if str(data["fingerprint"]) != task.spec.fingerprint:
            return None
        return data["ids"], data["offsets"], data["record_ids"].tolist()


def _ids_from_text(task: PackTask) -> tuple[np.ndarray, np.ndarray, list[str]]:
    backend = task.spec.backend()
    rec_ids: list[str] = []
    chunks: list[list[int]] = []
    texts: list[str] = []
    for rec in read_shard(Path(task.text_shard)):
        rec_ids.append(rec["id"])
        texts.append(rec["text"])
        if len(texts) >= ENCODE_BATCH:
            chunks += encode_texts(backend, texts)
            texts.clear()
    if texts:
        chunks += encode_texts(backend, texts)
    offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
    np.cumsum([len(c) for c in chunks], out=offsets[1:])
    flat = np.fromiter((t for c in chunks for t in c), dtype=task.spec.dtype, count=offsets[-1])
    return flat, offsets, rec_ids


def pack_shard(task: PackTask) -> dict[str, Any]:
    """Tokenize (or read cached ids of) one mix shard; write its token file, then its index."""
    cached = _ids_from_cache(task)
    origin = "cache" if cached is not None else "text"
    ids, offsets, rec_ids = cached if cached is not None else _ids_from_text(task)
    if len(rec_ids) != task.records:
        raise InputError(
            f"{task.text_shard}: {len(rec_ids)} records where the mix manifest says "
            f"{task.records}; rerun mix with --overwrite"
        )
    tokens, framed = frame_ids(task.spec, ids, offsets)
    buf = io.BytesIO()
    np.save(buf, tokens, allow_pickle=False)
    blob = buf.getvalue()
    atomic_write_bytes(Path(task.out_tokens), blob)
    info = {
        "file": Path(task.out_tokens).name,
        "records": len(rec_ids),
        "num_tokens": len(tokens),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "bytes": len(blob),
        "ids": rec_ids,
        "offsets": framed.tolist(),
    }
    atomic_write_bytes(Path(task.out_index), orjson.dumps(info))
    return {**info, "origin": origin}


def _worker_init() -> None:
    # One process per core already: a Rust thread pool per worker would oversubscribe.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


def _input_fingerprint(mix_manifest: Manifest, spec: TokenizerSpec) -> str:
    blob = orjson.dumps([manifest_fingerprint(mix_manifest), spec.fingerprint])
    return hashlib.sha256(blob).hexdigest()[:16]


def tokenize(
    cfg: TokenizeConfig,
    mix_dir: Path,
    out_dir: Path,
    overwrite: bool = False,
    executor: Executor | None = None,
) -> Manifest:
    """Run the tokenize stage; returns its manifest (at once when already done).

    `executor`: None packs here (`num_workers` processes); `--executor ray` packs
    each shard as a Ray task (same files: `pack_shard` writes them atomically).
    """
    spec = load_tokenizer_spec(cfg.tokenizer)
    source = require_manifest(mix_dir, "mix")
    fingerprint = _input_fingerprint(source, spec)
    opened = open_stage_dir(out_dir, STAGE, cfg, fingerprint, overwrite)
    if opened.done is not None:
        return opened.done

    tasks = [
        PackTask(
            text_shard=str(mix_dir / shard.file),
            cache=str(mix_dir / cache_name(shard.file)),
            records=shard.records,
            out_tokens=str(out_dir / token_file(k)),
            out_index=str(out_dir / index_file(k)),
            spec=spec,
            use_cache=cfg.use_mix_cache,
        )
        for k, shard in enumerate(source.shards)
    ]
    infos: list[dict[str, Any] | None] = [None] * len(tasks)
    for k, task in enumerate(tasks):
        if Path(task.out_index).is_file() and Path(task.out_tokens).is_file():
            infos[k] = {**orjson.loads(Path(task.out_index).read_bytes()), "origin": "resumed"}
    pending = [k for k, info in enumerate(infos) if info is None]
    with tqdm(
        total=len(tasks),
        initial=len(tasks) - len(pending),
        unit="shard",
        desc=STAGE,
        disable=None if cfg.progress else True,
        file=sys.stderr,
    ) as bar:
        todo = [tasks[k] for k in pending]
        mapper = map_ordered if executor is None else executor.map_ordered
        for k, info in zip(
            pending, mapper(pack_shard, todo, cfg.num_workers, _worker_init), strict=True
        ):
            infos[k] = info
            bar.update(1)

    done = [info for info in infos if info is not None]
    num_tokens = sum(i["num_tokens"] for i in done)
    start = 0
    shards = []
    for k, info in enumerate(done):
        shards.append(
            {
                "file": info["file"],
                "index": index_file(k),
                "records": info["records"],
                "num_tokens": info["num_tokens"],
                "start": start,
            }
        )
        start += info["num_tokens"]
    index = {
        "format": "instructpt-tokens",
        "version": INDEX_VERSION,
        "dtype": spec.dtype.name,
        "vocab_size": spec.vocab_size,
        "bos_id": spec.bos_id,
        "eos_id": spec.eos_id,
        "frame": {"prefix": spec.prefix, "suffix": spec.suffix},
        "tokenizer_fingerprint": spec.fingerprint,
        "seq_len": cfg.seq_len,
        "num_tokens": num_tokens,
        "num_sequences": num_tokens // cfg.seq_len,
        "shards": shards,
    }
    atomic_write_bytes(out_dir / INDEX_NAME, orjson.dumps(index, option=orjson.OPT_INDENT_2))
    stats = {
        "records": sum(i["records"] for i in done),
        "tokens": num_tokens,
        "sequences": num_tokens // cfg.seq_len,
        "tail_tokens": num_tokens % cfg.seq_len,
        "dtype": spec.dtype.name,
        "shards_from_mix_cache": sum(1 for i in done if i["origin"] == "cache"),
        "shards_encoded": sum(1 for i in done if i["origin"] == "text"),
        "shards_resumed": sum(1 for i in done if i["origin"] == "resumed"),
    }
    shard_infos = [ShardInfo(i["file"], i["records"], i["sha256"], i["bytes"]) for i in done]
    return opened.finish(opened.manifest(shard_infos, stats, format="npy"))
