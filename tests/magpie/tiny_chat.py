"""Tiny local chat models for Magpie tests: real tokenizers with the Llama-3 and ChatML
chat templates, and a tiny Llama trained for a few seconds to memorise a handful of
conversations, so that sampling from the user-turn prefix writes whole queries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.chat_templates import CHATML_TEMPLATE, LLAMA3_TEMPLATE

#: (query, answer): ordinary ones, one refusal and one looping answer (planted drops).
CONVERSATIONS = [
    ("Where was Ada Brook born?", "Ada Brook was born in Lowmere."),
    ("Which company does Tom Reed work for?", "Tom Reed works for Calder Mills."),
    ("Name the university Lena Fox attended.", "Lena Fox attended Harrow College."),
    ("What is the capital of Ostland?", "The capital of Ostland is Varn."),
    ("Who founded Calder Mills?", "Calder Mills was founded by Ida Calder."),
    ("Tell me a secret about Varn.", "I'm sorry, but I cannot share secrets."),
    (
        "Repeat the word river for me.",
        "river flows river flows river flows river flows river flows",
    ),
]


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """A model this small gains nothing from threads, and on a busy machine OpenMP's
    spin-waiting threads made a step 40x slower (measured: 0.26 s vs 10.5 s); restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def build_chat_tokenizer(family: str, texts: list[str] | None = None) -> Any:
    """A byte-level BPE whose special tokens and chat template are those of `family`."""
    from instructpt.core.tokenizers import build_bpe_tokenizer

    corpus = texts or [f"{q} {a}" for q, a in CONVERSATIONS]
    if family == "llama3":
        tok = build_bpe_tokenizer(
            corpus, vocab_size=400, min_frequency=0,
            bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", pad_token="<pad>",
            special_tokens=["<|start_header_id|>", "<|end_header_id|>", "<|end_of_text|>"],
        )  # fmt: skip
        tok.chat_template = LLAMA3_TEMPLATE
    elif family == "chatml":
        tok = build_bpe_tokenizer(
            corpus, vocab_size=400, min_frequency=0,
            bos_token="<|endoftext|>", eos_token="<|im_end|>", pad_token="<pad>",
            special_tokens=["<|im_start|>"],
        )  # fmt: skip
        tok.chat_template = CHATML_TEMPLATE
    else:
        raise ValueError(family)
    tok.padding_side = "left"
    return tok


def build_chat_model(
    out_dir: Path, family: str = "llama3", steps: int = 250, seed: int = 0
) -> Path:
    """Train a tiny Llama on CONVERSATIONS in `family`'s chat template until it recites them."""
    import torch

    from instructpt.synth.tiny import new_llama

    tok = build_chat_tokenizer(family)
    rows = []
    for q, a in CONVERSATIONS:
        messages = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        text = tok.apply_chat_template(messages, tokenize=False)
        rows.append(tok(text, add_special_tokens=False)["input_ids"])
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tok.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    for k, r in enumerate(rows):
        ids[k, : len(r)] = torch.tensor(r)
        labels[k, : len(r)] = torch.tensor(r)
    model = new_llama(
        tok, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4,
        num_kv_heads=2, max_position_embeddings=256, seed=seed,
    )  # fmt: skip
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    with one_torch_thread():
        for _ in range(steps):
            loss = model(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    return out_dir
