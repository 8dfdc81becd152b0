"""Tiny, locally built synthesizer-shaped models for tests and CPU smoke runs.

No hub is reachable on CI or air-gapped clusters, so tests build their own:
a byte-level BPE tokenizer trained on the given texts, with the synthesizer
format's tags as single (non-special) tokens and `<s>`/`</s>` as BOS/EOS,
and a randomly initialised Llama of a few hundred thousand parameters saved
with `save_pretrained` (safetensors). Random weights say nothing about
quality; they exercise every engine with the real tokenizer and model code.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from instructpt.core.tokenizers import build_bpe_tokenizer

#: Format tags that become single tokens; they stay non-special so that decoding
#: with skip_special_tokens=True keeps them in the text the parser reads.
TAG_TOKENS = ["<CON>", "</CON>", "<QUE>", "<ANS>", "</END>"]
BOS, EOS, PAD = "<s>", "</s>", "<pad>"


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512):  # -> PreTrainedTokenizerFast
    """A byte-level BPE with the format's tags as single (non-special) tokens."""
    fast = build_bpe_tokenizer(
        texts, vocab_size=vocab_size, min_frequency=0, plain_tokens=TAG_TOKENS,
        bos_token=BOS, eos_token=EOS, pad_token=PAD,
    )  # fmt: skip
    fast.padding_side = "left"  # a causal LM continues from the right end
    fast.add_bos_token = False
    return fast


def new_llama(
    tokenizer: Any,
    *,
    hidden_size: int,
    intermediate_size: int,
    num_layers: int,
    num_heads: int,
    num_kv_heads: int,
    max_position_embeddings: int,
    seed: int,
) -> Any:  # LlamaForCausalLM
    """A randomly initialised Llama sized for `tokenizer`, with tied embeddings."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def build_tiny_model(
    out_dir: Path,
    texts: Iterable[str],
    *,
    vocab_size: int = 512,
    hidden_size: int = 64,
    num_layers: int = 2,
    max_position_embeddings: int = 4096,
    seed: int = 0,
) -> Path:
    """Save a random tiny Llama + tokenizer to `out_dir`; returns `out_dir`."""
    tokenizer = train_tokenizer(texts, vocab_size)
    model = new_llama(
        tokenizer,
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_layers=num_layers,
        num_heads=4,
        num_kv_heads=2,
        max_position_embeddings=max_position_embeddings,
        seed=seed,
    )
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir
