"""The `sft` stage: instruction tuning of a model directory on instruction records.

Records (Alpaca or chat, `sft_data.py`) are rendered with the model's chat
template (else a documented plain one), the loss is on the assistant turns
only, token by token, and examples are packed into sequences whose examples
cannot see each other. Training is the shared loop (`loop.py`): the same
optimizer, schedule, checkpoints and exact resume as pre-training.

Options:
- `lora.r > 0`: LoRA adapters through peft (Hu et al. 2021) on `lora.target_modules`
  (default every linear layer but the output head); only the adapters train.
  The adapter is saved in `adapter/` (peft's `save_pretrained`, safetensors);
  `lora.merge` also writes the merged full model to `model/`.
- `distill.teacher`: the loss mixes CE with the KL to a teacher sharing the
  tokenizer, on the answer tokens only (`distill.py`).

Loss normalisation: each micro-batch's loss is the mean over its answer
tokens, and micro-batches of a step are averaged; packs hold different numbers
of answer tokens, so with `grad_accum > 1` this weights tokens slightly unevenly
(as HF's Trainer did before `num_items_in_batch`); fine at this scale.

Layout of the output directory:
    config.yaml            resolved config (written before the first step)
    rejected.jsonl         bad records: location (file line N), reason, detail
    metrics.jsonl          one row per logged step (loss; ce and kl when distilling)
    checkpoints/step-N/    exact resume, as in pretrain
    model/                 the tuned model (full fine-tuning, or LoRA merged) + tokenizer
    adapter/               LoRA only: adapter_model.safetensors + adapter_config.json
    _manifest.json         written last; stats: records, drops by reason, packs, loss
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructpt.core.manifest import Manifest, ShardInfo
from instructpt.errors import InputError
from instructpt.train import distributed as D
from instructpt.train.config import SftConfig
from instructpt.train.distill import distill_loss_fn
from instructpt.train.loop import loop_config_from
from instructpt.train.lora import add_lora
from instructpt.train.sft_data import (
    ReadStats,
    RecordError,
    collate,
    data_sources,
    ensure_chat_template,
    pack_examples,
    read_records,
    reject,
    tokenize_messages,
    write_rejected,
)
from instructpt.train.stage import (
    MODEL_DIR,
    open_training_stage,
    plan_steps,
    publish_folder,
    save_final_model,
)

STAGE = "sft"
ADAPTER_DIR = "adapter"
REJECTED_NAME = "rejected.jsonl"


@dataclass
class SftResult:
    out_dir: Path
    manifest: Manifest
    reused: bool

    @property
    def model_dir(self) -> Path | None:
        path = self.out_dir / MODEL_DIR
        return path if path.is_dir() else None

    @property
    def adapter_dir(self) -> Path | None:
        path = self.out_dir / ADAPTER_DIR
        return path if path.is_dir() else None

    def summary_lines(self) -> list[str]:
        st = self.manifest.stats
        what = "reused" if self.reused else "tuned"
        if not self.reused and st.get("resumed_from_step"):
            what = f"resumed at step {st['resumed_from_step']} and tuned"
        where = ", ".join(str(p) for p in (self.model_dir, self.adapter_dir) if p is not None)
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(st["dropped"].items())) or "none"
        return [
            f"sft: {what} -> {where}",
            f"  records {st['records']:,}: {st['examples']:,} examples, dropped: {dropped}"
            + (f" (see {self.out_dir / REJECTED_NAME})" if st["dropped"] else ""),
            f"  {st['steps']} steps, {st['packs']:,} sequences, {st['loss_tokens']:,} answer "
            f"tokens per epoch, loss {st['first_loss']:.3f} -> {st['last_loss']:.3f}",
        ]


def _input_fingerprint(cfg: SftConfig) -> str:
    # The files sft reads, not a folder's metadata (_manifest.json, stats.json).
    parts: list[Any] = [s.fingerprint() for s in data_sources(list(cfg.data))]
    for src in (cfg.model, cfg.distill.teacher):
        if src is not None and Path(src).is_dir():
            parts.append(
                [
                    [p.name, p.stat().st_size, p.stat().st_mtime_ns]
                    for p in sorted(Path(src).iterdir())
                ]
            )
        else:
            parts.append(src)
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def _load_model(cfg: SftConfig) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = cfg.model
    if not Path(src).exists() and ("/" not in src or src.startswith((".", "/"))):
        raise InputError(f"model {src!r}: no such model directory")
    try:
        tokenizer = AutoTokenizer.from_pretrained(src, trust_remote_code=cfg.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            src, trust_remote_code=cfg.trust_remote_code, dtype=torch.float32, use_safetensors=True
        )  # fp32 master weights whatever the saved dtype; autocast does bf16
    except OSError as exc:
        raise InputError(f"model {src!r} could not be loaded: {exc}") from None
    # a training forward: no KV cache, which also lets packed position ids isolate examples
    model.config.use_cache = False
    return tokenizer, model


def sft_batches(
    packs: list[list[Any]], cfg: SftConfig, pad_id: int, start: int, rank: int, world_size: int
) -> Iterator[dict[str, Any]]:
    """Micro-batches of this rank from number `start` on, across epochs, deterministically.

    Epoch e visits the packs in a permutation seeded by seed + e; rank r of w
    takes every w-th micro-batch of it.
    """
    per_epoch = len(packs) // (cfg.micro_batch_size * world_size)
    if per_epoch < 1:
        raise InputError(
            f"{len(packs)} sequences are fewer than one micro-batch of {cfg.micro_batch_size} "
            f"per rank; lower micro_batch_size or give more data"
        )
    epoch, skip = divmod(start, per_epoch)
    while True:
        order = list(range(len(packs)))
        random.Random(f"sft-epoch-{cfg.seed + epoch}").shuffle(order)
        for i in range(skip, per_epoch):
            first = (i * world_size + rank) * cfg.micro_batch_size
            chosen = order[first : first + cfg.micro_batch_size]
            yield collate([packs[j] for j in chosen], pad_id)
        epoch, skip = epoch + 1, 0


def sft(cfg: SftConfig, out_dir: Path, overwrite: bool = False) -> SftResult:
    """Tune (or resume, or reuse) `cfg.model` on `cfg.data` into `out_dir` (rank 0 writes)."""
    import torch

    fingerprint = _input_fingerprint(cfg)
    outputs = (MODEL_DIR, ADAPTER_DIR)
    with open_training_stage(out_dir, STAGE, cfg, fingerprint, overwrite, outputs) as run:
        if run.done is not None:
            return SftResult(out_dir, run.done, reused=True)
        dist, device = run.dist, run.device
        tokenizer, model = _load_model(cfg)
        template = ensure_chat_template(tokenizer, cfg.template)
        loss_fn = distill_loss_fn(cfg.distill, cfg.model, device)

        # Data, all before the first step: bad records fail or are counted here.
        read = ReadStats()
        rejected: list[dict[str, str]] = []
        counts: Counter[str] = Counter()
        examples = []
        for where, messages in read_records(cfg.data, read, cfg.on_error, rejected):
            try:
                examples.append(tokenize_messages(tokenizer, messages, counts))
            except RecordError as exc:
                read.kept -= 1
                reject(where, exc, read, cfg.on_error, rejected)
        if dist.is_main:
            write_rejected(out_dir / REJECTED_NAME, rejected)
        if not examples:
            raise InputError(
                f"no usable instruction records in {cfg.data} ({read.records} read, dropped: "
                f"{dict(read.dropped)}); see {out_dir / REJECTED_NAME}"
            )
        packs, pack_stats = pack_examples(examples, cfg.seq_len, cfg.seed, cfg.packing)
        pad_id = tokenizer.pad_token_id
        if pad_id is None:
            pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        steps = plan_steps(cfg, len(packs), dist.world_size)

        torch.manual_seed(cfg.seed)  # LoRA's A matrices are drawn here
        trained = add_lora(model, cfg.lora) if cfg.lora.enabled else model
        trained.to(device)
        strategy = "ddp" if cfg.lora.enabled else "auto"  # FSDP wraps the bare HF layout
        wrapped = D.wrap_model(trained, dist, strategy, device)
        result = run.train(
            wrapped,
            lambda start: sft_batches(packs, cfg, pad_id, start, dist.rank, dist.world_size),
            loop_config_from(cfg, steps, device),
            loss_fn,
        )
        shards = _save(trained, wrapped, dist, tokenizer, cfg, out_dir)
        trainable = sum(p.numel() for p in trained.parameters() if p.requires_grad)
        stats = {
            "records": read.records,
            "examples": len(examples),
            "dropped": dict(read.dropped),
            "boundaries_retokenized": counts["boundaries_retokenized"],
            "template": template,
            "truncated": pack_stats.truncated,
            "dropped_after_truncation": pack_stats.dropped_after_truncation,
            "packs": pack_stats.packs,
            "examples_per_pack": pack_stats.examples / max(1, pack_stats.packs),
            "tokens": pack_stats.tokens,
            "loss_tokens": pack_stats.loss_tokens,
            "parameters": sum(p.numel() for p in model.parameters()),
            "trainable_parameters": trainable,
            "lora": cfg.lora.enabled,
            "tokens_trained": result.tokens,
            "device": device,
            "world_size": dist.world_size,
            **result.stats(cfg.distill.enabled),
        }
        return SftResult(out_dir, run.finish(shards, stats), reused=False)


def _save(
    trained: Any, wrapped: Any, dist: D.Dist, tokenizer: Any, cfg: SftConfig, out_dir: Path
) -> list[ShardInfo]:
    """model/ (full or merged) and adapter/ (LoRA), each published by rename."""
    if not cfg.lora.enabled:
        return save_final_model(trained, wrapped, dist, out_dir, tokenizer=tokenizer)
    shards: list[ShardInfo] = []
    if dist.is_main:

        def write_adapter(tmp: Path) -> None:
            trained.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)

        shards += publish_folder(out_dir, ADAPTER_DIR, write_adapter)
    if cfg.lora.merge:
        merged = trained.merge_and_unload()
        shards += save_final_model(merged, merged, dist, out_dir, tokenizer=tokenizer)
    return shards
