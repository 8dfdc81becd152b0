"""Tokenizers for pre-training: any Hugging Face tokenizer directory, or a trained byte-level BPE.

The stages that count and encode tokens (`mix`, `tokenize`) need only the
fast `tokenizers` backend (`tokenizer.json`) plus the ids of BOS and EOS, so
they load a `TokenizerSpec` (a few file reads, no transformers import) and
worker processes rebuild the backend from the file. Every document is encoded
with `add_special_tokens=False` and framed by `frame_ids`: BOS before and EOS
after, as the tokenizer defines them. A tokenizer with no BOS gets EOS only;
one whose BOS and EOS are the same token (GPT-2's `<|endoftext|>`) gets it once,
after the document, so documents are never separated by two of them. A
tokenizer with neither is refused: packed documents would run into each other.

`mix` counts a record's tokens with the same framing, so a token budget set in
`mix` is exactly what `tokenize` writes.

Exact round trip (tokens -> text) holds for byte-level BPE tokenizers without
a normalizer, such as the ones `train_tokenizer` builds; tokenizers that
normalize text (lower-casing, NFKC) or drop characters cannot promise it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from instructpt.core.tokenizers import (  # moved
    build_bpe_tokenizer,
)
from instructpt.pack.config import TokenizerTrainConfig  # moved

# --------------------------------------------------------------------------- training


def train_tokenizer(
    texts: Iterable[str],
    out_dir: Path,
    *,
    vocab_size: int = 8192,
    min_frequency: int = 2,
    bos_token: str = "<s>",
    eos_token: str = "</s>",
    pad_token: str = "<pad>",
    special_tokens: Sequence[str] = (),
) -> Path:
    """Train a byte-level BPE on `texts` and save it to `out_dir` (AutoTokenizer loads it).

    The folder appears complete or not at all (saved beside it, then renamed).
    """
    fast = build_bpe_tokenizer(
        texts,
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        bos_token=bos_token,
        eos_token=eos_token,
        pad_token=pad_token,
        special_tokens=special_tokens,
    )
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
    from instructpt.core.manifest import read_manifest
    from instructpt.core.shards import read_shard
    from instructpt.corpus.readers import discover_sources, iter_source

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


def train_tokenizer_stage(cfg: TokenizerTrainConfig, out_dir: Path) -> Path:
    """`instructpt tokenizer train`: texts of `cfg.input` -> tokenizer dir `out_dir`."""
    texts: Iterable[str] = iter_texts(cfg.input)
    if cfg.max_texts is not None:
        import itertools

        texts = itertools.islice(texts, cfg.max_texts)
    return train_tokenizer(
        texts,
        out_dir,
        vocab_size=cfg.vocab_size,
        min_frequency=cfg.min_frequency,
        bos_token=cfg.bos_token,
        eos_token=cfg.eos_token,
        pad_token=cfg.pad_token,
        special_tokens=cfg.special_tokens,
    )
