"""Train a byte-level BPE tokenizer for pre-training (`instructpt tokenizer train`).

The tokenizer folder is what `mix`, `tokenize` and the trainers load (see
`core.tokenizers` for how they frame documents with BOS/EOS). The BPE is
byte-level without a normalizer, so tokens decode back to the exact text.

`train_tokenizer_stage` is a stage like the others: the folder records its
config and input (`config.yaml`, `_manifest.json`, `stats.json`), a rerun with
the same ones is skipped, and a changed config (say `vocab_size`) is refused,
naming the changed keys, unless `overwrite` retrains it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from instructpt.core.manifest import MANIFEST_NAME, ShardInfo, read_manifest
from instructpt.core.resume import CONFIG_NAME, open_stage_dir
from instructpt.core.runner import manifest_fingerprint
from instructpt.core.shards import file_sha256, read_shard
from instructpt.core.tokenizers import build_bpe_tokenizer, load_tokenizer_spec
from instructpt.corpus.readers import discover_sources, iter_source
from instructpt.errors import ResumeError
from instructpt.pack.config import TokenizerTrainConfig

STAGE = "tokenizer"
#: Files `save_pretrained` writes for a fast tokenizer: all a folder held before
#: tokenizer folders carried a manifest.
_SAVED_FILES = frozenset(
    {
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "chat_template.jinja",
    }
)

#: The config fields that are `build_bpe_tokenizer` options.
BPE_OPTIONS = frozenset(
    {"vocab_size", "min_frequency", "bos_token", "eos_token", "pad_token", "special_tokens"}
)

# --------------------------------------------------------------------------- training


def train_tokenizer(texts: Iterable[str], out_dir: Path, **options: Any) -> Path:
    """Train a byte-level BPE on `texts` and save it to `out_dir` (AutoTokenizer loads it).

    `options` are `build_bpe_tokenizer`'s (`vocab_size`, `min_frequency`, the BOS,
    EOS and pad tokens, `special_tokens`). The folder appears complete or not at
    all (saved beside it, then renamed).
    """
    fast = build_bpe_tokenizer(texts, **options)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        fast.save_pretrained(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def iter_texts(inputs: Sequence[str]) -> Iterator[str]:
    """The `text` field of stage directories (via their manifest) or of jsonl/parquet files."""
    for spec in inputs:
        folder = Path(spec)
        manifest = read_manifest(folder) if folder.is_dir() else None
        if manifest is not None:
            for shard in manifest.shards:
                for rec in read_shard(folder / shard.file):
                    yield rec["text"]
            continue
        for source in discover_sources([spec]):
            for raw in iter_source(source):
                if raw.error is None and isinstance(raw.data, dict):
                    text = raw.data.get("text")
                    if isinstance(text, str):
                        yield text


def input_fingerprint(inputs: Sequence[str]) -> str:
    """Identity of what `iter_texts` reads: stage folders' manifests, files' sizes and mtimes."""
    parts: list[object] = []
    for spec in inputs:
        folder = Path(spec)
        manifest = read_manifest(folder) if folder.is_dir() else None
        if manifest is not None:
            parts.append(manifest_fingerprint(manifest))
        else:
            parts.append([source.fingerprint() for source in discover_sources([spec])])
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()[:16]


def train_tokenizer_stage(
    cfg: TokenizerTrainConfig, out_dir: Path, overwrite: bool = False
) -> Path:
    """`instructpt tokenizer train`: texts of `cfg.input` -> tokenizer dir `out_dir`.

    Skipped when `out_dir` already holds a tokenizer of this config and input; a
    different config or input is refused (naming what changed) unless `overwrite`.
    """
    out_dir = Path(out_dir)
    _clear_unrecorded_tokenizer(out_dir, cfg, overwrite)
    opened = open_stage_dir(out_dir, STAGE, cfg, input_fingerprint(cfg.input), overwrite)
    if opened.done is not None:
        return out_dir
    texts: Iterable[str] = iter_texts(cfg.input)
    if cfg.max_texts is not None:
        texts = itertools.islice(texts, cfg.max_texts)
    seen = 0

    def counted(texts: Iterable[str]) -> Iterator[str]:
        nonlocal seen
        for text in texts:
            seen += 1
            yield text

    saved = train_tokenizer(
        counted(texts), opened.work / "tokenizer", **cfg.model_dump(include=BPE_OPTIONS)
    )
    shards = []
    for file in sorted(saved.iterdir()):
        target = out_dir / file.name
        os.replace(file, target)
        shards.append(ShardInfo.of(target, 1, file_sha256(target)))
    stats = {"texts": seen, "vocab_size": load_tokenizer_spec(out_dir).vocab_size}
    opened.finish(opened.manifest(shards, stats, format="hf-tokenizer"))
    return out_dir


def _clear_unrecorded_tokenizer(out_dir: Path, cfg: TokenizerTrainConfig, overwrite: bool) -> None:
    """A tokenizer folder from before folders recorded their config: retrain or refuse.

    Its config is unknown, so reusing it could silently keep another `vocab_size`.
    """
    if (out_dir / MANIFEST_NAME).exists() or (out_dir / CONFIG_NAME).exists():
        return
    if not (out_dir / "tokenizer.json").is_file():
        return
    if not all(p.name in _SAVED_FILES for p in out_dir.iterdir()):
        return  # not only a tokenizer: open_stage_dir refuses to touch it
    if not overwrite:
        raise ResumeError(
            f"{out_dir} holds a tokenizer that does not record the config it was trained "
            f"with, so it may not match this one (vocab_size {cfg.vocab_size}); rerun with "
            f"--overwrite to retrain it, or choose another folder"
        )
    shutil.rmtree(out_dir)
