"""A minimal causal-LM training loop: AdamW, warmup + cosine, clipping, accumulation.

Temporary on purpose: the Training issue (#8) will absorb or replace this loop
with the pre-training/continual trainer (token shards, checkpoints, FSDP);
until then it serves synthesizer fine-tuning and stays small enough to read
top to bottom. It does not use the HF `Trainer`: any `transformers` causal LM
that takes `input_ids`, `attention_mask` and `labels` and returns `.loss` fits.

- Precision: fp32 on CPU (bf16 matmuls are 2-3x slower there, shared/MACHINE.md);
  bf16 autocast on a CUDA device that supports it.
- Determinism: the seed is set before the first step and micro-batches arrive
  in the order given, so the same inputs and seed give the same losses on the
  same machine.
- Accumulation: each optimizer step averages the mean losses of `grad_accum`
  micro-batches (not weighted by their token counts; packs are close to
  `seq_len` so the difference is small).
- Metrics: one JSON line per logged step (step, loss, lr, tokens, tokens/s,
  elapsed s) appended to `metrics_path` when given.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson


@dataclass(kw_only=True)
class LoopConfig:
    num_steps: int  # optimizer steps
    lr: float = 1e-3
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 0
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping
    grad_accum: int = 1  # micro-batches per optimizer step
    seed: int = 0
    device: str = "cpu"
    log_every: int = 10
    max_seconds: float | None = None  # stop early (after a full step) past this wall time
    progress: bool = True

    def __post_init__(self) -> None:
        if self.num_steps < 1:
            raise ValueError("num_steps must be >= 1")
        if self.grad_accum < 1:
            raise ValueError("grad_accum must be >= 1")
        if not 0 <= self.warmup_steps <= self.num_steps:
            raise ValueError("warmup_steps must be between 0 and num_steps")


@dataclass
class LoopResult:
    steps: int = 0
    tokens: int = 0  # non-padding tokens seen
    seconds: float = 0.0
    first_loss: float = math.nan
    last_loss: float = math.nan  # mean over the last logged window
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def lr_at(step: int, cfg: LoopConfig) -> float:
    """Linear warmup to `lr`, then cosine down to `lr * min_lr_ratio` at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.num_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _autocast(device: str) -> Any:
    import torch

    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _optimizer(model: Any, cfg: LoopConfig) -> Any:
    import torch

    # No weight decay on norms and biases (1-d tensors), as in GPT-2/nanoGPT.
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


def train_loop(
    model: Any,
    micro_batches: Iterator[dict[str, Any]],
    cfg: LoopConfig,
    metrics_path: Path | None = None,
    on_log: Callable[[dict[str, float]], None] | None = None,
) -> LoopResult:
    """Train `model` in place for `cfg.num_steps` optimizer steps.

    `micro_batches` yields dicts of CPU tensors (`input_ids`, `attention_mask`,
    `labels`); it must hold at least `num_steps * grad_accum` of them.
    """
    import torch
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    model.to(cfg.device)
    model.train()
    optimizer = _optimizer(model, cfg)
    result = LoopResult()
    window: list[float] = []
    metrics = metrics_path.open("ab") if metrics_path is not None else None
    start = time.perf_counter()
    bar = tqdm(
        total=cfg.num_steps,
        desc="train",
        unit="step",
        disable=None if cfg.progress else True,
        file=sys.stderr,
    )
    try:
        for step in range(cfg.num_steps):
            lr = lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            step_loss = 0.0
            for _ in range(cfg.grad_accum):
                try:
                    batch = next(micro_batches)
                except StopIteration:
                    raise ValueError(
                        f"ran out of micro-batches at step {step} of {cfg.num_steps}"
                    ) from None
                batch = {k: v.to(cfg.device) for k, v in batch.items()}
                with _autocast(cfg.device):
                    loss = model(**batch).loss / cfg.grad_accum
                loss.backward()
                step_loss += loss.item()
                result.tokens += int(batch["attention_mask"].sum())
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            result.steps = step + 1
            if step == 0:
                result.first_loss = step_loss
            window.append(step_loss)
            elapsed = time.perf_counter() - start
            bar.update(1)
            if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.num_steps:
                row = {
                    "step": step + 1,
                    "loss": sum(window) / len(window),
                    "lr": lr,
                    "tokens": result.tokens,
                    "tokens_per_s": result.tokens / elapsed,
                    "elapsed_s": elapsed,
                }
                window = []
                result.last_loss = row["loss"]
                result.history.append(row)
                bar.set_postfix(loss=f"{row['loss']:.3f}", tok_s=f"{row['tokens_per_s']:.0f}")
                if metrics is not None:
                    metrics.write(orjson.dumps(row) + b"\n")
                    metrics.flush()
                if on_log is not None:
                    on_log(row)
            if cfg.max_seconds is not None and elapsed > cfg.max_seconds:
                result.stopped_early = step + 1 < cfg.num_steps
                break
    finally:
        bar.close()
        if metrics is not None:
            metrics.close()
    if window:
        result.last_loss = sum(window) / len(window)
    result.seconds = time.perf_counter() - start
    model.eval()
    return result
