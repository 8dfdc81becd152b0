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

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from instructpt.errors import InputError

#: Largest vocabulary whose ids fit uint16 (ids 0..65535).
UINT16_VOCAB = 1 << 16


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (half the disk and memory), else uint32."""
    return np.dtype(np.uint16) if vocab_size <= UINT16_VOCAB else np.dtype(np.uint32)


def _token_content(value: Any) -> str | None:
    # tokenizer_config.json holds a string, or an AddedToken dict in older files.
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class TokenizerSpec:
    """What the stages need to know about a tokenizer; cheap to build and to pickle."""

    path: str  # the tokenizer.json file
    vocab_size: int  # including added tokens
    bos_id: int | None
    eos_id: int | None
    fingerprint: str  # changes when the vocabulary, merges or BOS/EOS change

    @property
    def dtype(self) -> np.dtype:
        return token_dtype(self.vocab_size)

    @property
    def prefix(self) -> list[int]:
        if self.bos_id is None or self.bos_id == self.eos_id:
            return []
        return [self.bos_id]

    @property
    def suffix(self) -> list[int]:
        return [] if self.eos_id is None else [self.eos_id]

    @property
    def num_frame_tokens(self) -> int:
        """Tokens `frame_ids` adds around every document."""
        return len(self.prefix) + len(self.suffix)

    def backend(self) -> Any:
        """The `tokenizers.Tokenizer` (build one per process; it is not shared)."""
        from tokenizers import Tokenizer

        return Tokenizer.from_file(self.path)


def load_tokenizer_spec(tokenizer_dir: str | Path) -> TokenizerSpec:
    """Read a Hugging Face tokenizer directory; errors say what is missing and how to fix it."""
    folder = Path(tokenizer_dir)
    file = folder / "tokenizer.json" if folder.is_dir() else folder
    if not file.is_file():
        raise InputError(
            f"{folder} holds no tokenizer.json (a fast tokenizer). Load it once with "
            f"transformers.AutoTokenizer and save_pretrained it to convert, or train one "
            f"with `instructpt tokenizer train`."
        )
    from tokenizers import Tokenizer

    backend = Tokenizer.from_file(str(file))
    names: dict[str, str | None] = {"bos_token": None, "eos_token": None}
    for meta in ("special_tokens_map.json", "tokenizer_config.json"):
        meta_file = file.parent / meta
        if meta_file.is_file():
            data = orjson.loads(meta_file.read_bytes())
            for key in names:
                names[key] = names[key] or _token_content(data.get(key))
    ids = {}
    for key, name in names.items():
        ids[key] = None if name is None else backend.token_to_id(name)
        if name is not None and ids[key] is None:
            raise InputError(f"{file.parent}: {key} {name!r} is not in the vocabulary")
    if ids["bos_token"] is None and ids["eos_token"] is None:
        raise InputError(
            f"{file.parent} defines neither bos_token nor eos_token, so packed documents "
            f"could not be told apart; set eos_token in its tokenizer_config.json"
        )
    digest = hashlib.sha256(file.read_bytes())
    digest.update(orjson.dumps([ids["bos_token"], ids["eos_token"]]))
    return TokenizerSpec(
        path=str(file.resolve()),
        vocab_size=backend.get_vocab_size(with_added_tokens=True),
        bos_id=ids["bos_token"],
        eos_id=ids["eos_token"],
        fingerprint=digest.hexdigest()[:16],
    )


def encode_texts(backend: Any, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text, without special tokens (framing is `frame_ids`'s job).

    `encode_batch_fast` (tokenizers >= 0.21) skips character offsets, which packing
    never uses: same ids, ~10% faster here; older tokenizers fall back.
    """
    encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
    return [e.ids for e in encode(list(texts), add_special_tokens=False)]


def frame_ids(
    spec: TokenizerSpec, ids: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Add BOS/EOS around each document of a flat id array; returns (tokens, new offsets).

    `ids` holds the documents back to back, document i at offsets[i]:offsets[i+1].
    Vectorised: one pass of numpy, no Python loop per document.
    """
    prefix, suffix = spec.prefix, spec.suffix
    extra = len(prefix) + len(suffix)
    n = len(offsets) - 1
    new_offsets = offsets + np.arange(n + 1, dtype=np.int64) * extra
    out = np.empty(int(new_offsets[-1]), dtype=spec.dtype)
    lengths = np.diff(offsets)
    shift = np.repeat(np.arange(n, dtype=np.int64) * extra + len(prefix), lengths)
    out[np.arange(len(ids), dtype=np.int64) + shift] = ids
    for j, tok in enumerate(prefix):
        out[new_offsets[:-1] + j] = tok
    for j, tok in enumerate(suffix):
        out[new_offsets[1:] - len(suffix) + j] = tok
    return out, new_offsets


def build_bpe_tokenizer(
    texts: Iterable[str],
    *,
    vocab_size: int = 8192,
    min_frequency: int = 2,
    bos_token: str = "<s>",
    eos_token: str = "</s>",
    pad_token: str = "<pad>",
    special_tokens: Sequence[str] = (),
    plain_tokens: Sequence[str] = (),
) -> Any:  # PreTrainedTokenizerFast
    """Train a byte-level BPE on `texts`, in memory (the one BPE trainer of the project).

    Ids: pad 0, bos 1, eos 2, then the extra special tokens, then bytes and merges,
    then `plain_tokens`: strings kept as single tokens but NOT special, so decoding
    with skip_special_tokens keeps them (the synthesizer's format tags).
    No post-processor: encoding adds no BOS by itself; packing frames documents.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # No normalizer and a byte-level decoder: decode(encode(text)) == text for any text.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[pad_token, bos_token, eos_token, *special_tokens],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    if plain_tokens:
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in plain_tokens])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos_token,
        eos_token=eos_token,
        pad_token=pad_token,
        extra_special_tokens=list(special_tokens) or None,
    )
