"""The training loop shared by pre-training, continual pre-training and synthesizer training.

Lean on purpose (not the HF `Trainer`): any `transformers` causal LM that takes
`input_ids` (and optionally `attention_mask`, `labels`) and returns `.loss`.

- Optimizer: AdamW, fused kernel where the device has one (CUDA and CPU in
  recent torch), no weight decay on 1-d tensors (norms, biases), as in nanoGPT.
- Schedule: linear warmup to `lr`, cosine to `lr * min_lr_ratio` at the last step.
- Precision: `auto` = bf16 autocast on a CUDA device that supports it, fp32 on
  CPU (bf16 matmuls are 2-3x slower there, shared/MACHINE.md).
- Accumulation: `grad_accum` micro-batches per step, each loss divided by
  `grad_accum` (packed batches hold the same number of tokens, so this is the
  exact token mean); gradients sync across ranks on the last one only.
- Exact resume: with `checkpoint_dir`, a checkpoint every `checkpoint_every`
  steps (model, optimizer, RNG, data position, open loss window; see
  `checkpoint.py`); a rerun continues from the newest one and gives the same
  losses and final weights as an uninterrupted run. `batches(start)` must yield
  the micro-batches of this rank from number `start` on, deterministically.
- Metrics: one JSON line per logged step (loss, lr, grad norm, tokens,
  tokens/s, MFU when the device's peak FLOP/s is known, elapsed s) in
  `metrics_path`; rows past the resume point are dropped on resume so the
  file always equals an uninterrupted run's (up to timings). Optionally TensorBoard.
- Loss: `model(**batch).loss` by default; a `loss_fn(model, batch) -> (loss,
  extras)` replaces it (distillation, `distill.py`); its extras (floats) are
  averaged over the logged window and written beside the loss (their window
  restarts on resume, unlike the loss's). `fused_loss` (`auto` = where it
  applies) has the model compute `.loss` with the chunked linear cross-entropy
  (`linear_ce.py`: same loss and gradients, never the full logits); which path
  ran is `LoopResult.loss_path`, in every training stage's manifest.
- Batches: tensors passed to the model as keywords, except `num_tokens` (the
  real tokens of a batch whose padding is not marked by an `attention_mask`,
  e.g. packed instruction data with restarting `position_ids`), used for counting.
"""

from __future__ import annotations

import contextlib
import math
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from instructpt.core.atomic import atomic_write_bytes
from instructpt.train.checkpoint import (
    TrainerState,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from instructpt.train.distributed import Dist, all_mean, barrier

Precision = Literal["auto", "fp32", "bf16"]
FusedLoss = Literal["auto", "on", "off"]
BatchSource = Callable[[int], Iterator[dict[str, Any]]]
LossFn = Callable[[Any, dict[str, Any]], tuple[Any, dict[str, float]]]

#: Dense bf16 peak FLOP/s per device, for MFU; matched against the CUDA device name.
PEAK_BF16_FLOPS = {  # dense bf16; matched as whole words of the device name
    "H100 PCIe": 756e12,
    "H100 NVL": 835e12,
    "H100": 989e12,
    "H200": 989e12,
    "GH200": 989e12,
    "B200": 2250e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L40": 181e12,
    "A10G": 70e12,
    "L4": 121e12,
    "RTX 4090": 165e12,
}


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
    precision: Precision = "auto"
    compile: bool = False
    activation_checkpointing: bool = False
    fused_loss: FusedLoss = "auto"  # chunked linear CE: auto = where it applies (linear_ce.py)
    log_every: int = 10
    checkpoint_every: int = 0  # steps between checkpoints; 0 = none
    keep_checkpoints: int = 2
    max_seconds: float | None = None  # stop early (after a full step) past this wall time
    flops_per_token: float | None = None  # for MFU
    peak_flops: float | None = None  # per device; None = looked up for known GPUs
    tensorboard_dir: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.num_steps < 1:
            raise ValueError("num_steps must be >= 1")
        if self.grad_accum < 1:
            raise ValueError("grad_accum must be >= 1")
        if not 0 <= self.warmup_steps <= self.num_steps:
            raise ValueError("warmup_steps must be between 0 and num_steps")
        if self.fused_loss not in ("auto", "on", "off"):
            raise ValueError(f"fused_loss must be auto, on or off, not {self.fused_loss!r}")


def loop_config_from(cfg: Any, num_steps: int, device: str, **extra: Any) -> LoopConfig:
    """The `LoopConfig` of a stage config that uses the shared training keys.

    pretrain, continue and sft name their optimizer, schedule and checkpoint keys
    alike; this maps them in one place, and `extra` sets what only one stage has.
    """
    return LoopConfig(
        num_steps=num_steps,
        lr=cfg.lr,
        min_lr_ratio=cfg.min_lr_ratio,
        warmup_steps=round(num_steps * cfg.warmup_fraction),
        weight_decay=cfg.weight_decay,
        betas=(cfg.beta1, cfg.beta2),
        grad_clip=cfg.grad_clip,
        grad_accum=cfg.grad_accum,
        seed=cfg.seed,
        device=device,
        precision=cfg.precision,
        activation_checkpointing=cfg.activation_checkpointing,
        fused_loss=cfg.fused_loss,
        log_every=cfg.log_every,
        checkpoint_every=cfg.checkpoint_every,
        keep_checkpoints=cfg.keep_checkpoints,
        progress=cfg.progress,
        **extra,
    )


@dataclass
class LoopResult:
    steps: int = 0
    tokens: int = 0  # tokens trained on (non-padding), all ranks
    seconds: float = 0.0  # training wall time, across resumes
    first_loss: float = math.nan
    last_loss: float = math.nan  # mean over the last logged window
    stopped_early: bool = False
    resumed_from: int | None = None  # step of the checkpoint this run started from
    history: list[dict[str, float]] = field(default_factory=list)
    loss_path: str = "model"  # chunked-ce, model or loss_fn (linear_ce.LossPath)
    loss_path_reason: str | None = None  # why not chunked-ce

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def stats(self, distill: bool = False) -> dict[str, Any]:
        """The run's figures every training stage's manifest carries (plus CE/KL when
        distilling), so pretrain, continue and sft report them under the same names."""
        out: dict[str, Any] = {
            "steps": self.steps,
            "first_loss": self.first_loss,
            "last_loss": self.last_loss,
            "tokens_per_s": self.tokens_per_s,
            "seconds": self.seconds,
            "resumed_from_step": self.resumed_from,
            "loss_path": self.loss_path,
            "loss_path_reason": self.loss_path_reason,
        }
        if distill and self.history:
            out["last_ce"] = self.history[-1].get("ce")
            out["last_kl"] = self.history[-1].get("kl")
        return out


def lr_at(step: int, cfg: LoopConfig) -> float:
    """Linear warmup to `lr`, then cosine down to `lr * min_lr_ratio` at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.num_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def use_bf16(cfg: LoopConfig) -> bool:
    import torch

    if cfg.precision == "bf16":
        return True
    return (
        cfg.precision == "auto"
        and cfg.device.startswith("cuda")
        and torch.cuda.is_available()
        and torch.cuda.is_bf16_supported()
    )


def peak_flops(cfg: LoopConfig) -> float | None:
    """Per-device peak FLOP/s for MFU: the config's, or a known GPU's bf16 figure."""
    if cfg.peak_flops:
        return cfg.peak_flops
    import torch

    if not (cfg.device.startswith("cuda") and torch.cuda.is_available() and use_bf16(cfg)):
        return None
    return known_peak_flops(torch.cuda.get_device_name())


def known_peak_flops(device_name: str) -> float | None:
    """The table's figure for a device name, by whole words ("L4" is not "L40S")."""
    for key, value in PEAK_BF16_FLOPS.items():  # most specific names first
        if re.search(rf"(?<![A-Za-z0-9]){re.escape(key)}(?![A-Za-z0-9])", device_name):
            return value
    return None


def make_optimizer(model: Any, cfg: LoopConfig) -> Any:
    import torch

    # No weight decay on norms and biases (1-d tensors), as in GPT-2/nanoGPT.
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    try:
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=True)
    except (RuntimeError, ValueError):  # no fused kernel for this device/dtype
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


def _grad_sync(model: Any, sync: bool) -> Any:
    """Skip the gradient all-reduce on all but the last micro-batch of a step."""
    if hasattr(model, "set_requires_gradient_sync"):  # FSDP2
        model.set_requires_gradient_sync(sync)
        return contextlib.nullcontext()
    if hasattr(model, "no_sync") and not sync:  # DDP
        return model.no_sync()
    return contextlib.nullcontext()


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop rows logged after the checkpoint we resume from (they will be logged again)."""
    if not path.is_file():
        return
    keep = [
        line
        for line in path.read_bytes().splitlines()
        if line.strip() and orjson.loads(line).get("step", 0) <= step
    ]
    atomic_write_bytes(path, b"".join(line + b"\n" for line in keep))


def _tensorboard(cfg: LoopConfig, dist: Dist) -> Any:
    if not cfg.tensorboard_dir or not dist.is_main:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise RuntimeError(
            "tensorboard_dir is set but tensorboard is not installed: "
            "pip install 'instructpt[tensorboard]' (or unset tensorboard_dir)"
        ) from exc
    return SummaryWriter(cfg.tensorboard_dir)


def train_loop(
    model: Any,
    batches: BatchSource | Iterator[dict[str, Any]],
    cfg: LoopConfig,
    metrics_path: Path | None = None,
    on_log: Callable[[dict[str, float]], None] | None = None,
    *,
    checkpoint_dir: Path | None = None,
    dist: Dist | None = None,
    loss_fn: LossFn | None = None,
) -> LoopResult:
    """Train `model` (already wrapped for DDP/FSDP when distributed) to `cfg.num_steps`.

    `batches` is a `start -> iterator` callable (required for resume) or a
    plain iterator; it must hold `num_steps * grad_accum` micro-batches.
    """
    import torch
    from tqdm import tqdm

    # linear_ce imports torch at module level (its autograd.Function); importing it here,
    # like torch above, keeps `instructpt --help` and the CLI's start-up free of torch.
    from instructpt.train.linear_ce import choose_loss_path, fused_loss_forward

    dist = dist or Dist()
    torch.manual_seed(cfg.seed)
    if not dist.enabled:
        model.to(cfg.device)
    model.train()
    if cfg.activation_checkpointing:
        inner = getattr(model, "module", model)
        inner.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    optimizer = make_optimizer(model, cfg)
    state = TrainerState(window=[], grad_norms=[])
    result = LoopResult()
    resume_from = latest_checkpoint(checkpoint_dir) if checkpoint_dir is not None else None
    if resume_from is not None:
        state = load_checkpoint(resume_from, model, optimizer)
        result.resumed_from = state.step
        if metrics_path is not None and dist.is_main:
            _truncate_metrics(metrics_path, state.step)
    if callable(batches):
        stream = batches(state.micro_batches)
    elif state.micro_batches:
        raise ValueError("resuming needs a batch source that can start at a position")
    else:
        stream = batches
    # chosen before any file is opened: fused_loss "on" fails here where it cannot apply
    path = choose_loss_path(model, cfg.fused_loss, custom_loss=loss_fn is not None)
    result.loss_path, result.loss_path_reason = path.name, path.reason
    if cfg.compile:
        model.compile()  # in place: nn.Module.compile keeps names and state dicts unchanged
    if cfg.device.startswith("cuda"):
        # TF32 tensor cores for the fp32 matmuls left outside bf16 autocast (and for
        # fp32 training): ~10 mantissa bits, the precision every large-model trainer uses
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    bf16 = use_bf16(cfg)
    peak = peak_flops(cfg)
    metrics = metrics_path.open("ab") if metrics_path is not None and dist.is_main else None
    board = _tensorboard(cfg, dist)
    window, norms = list(state.window or []), list(state.grad_norms or [])
    # Per-step losses and grad norms stay on the device until a log row or a checkpoint
    # needs them: one host sync per log window, not one per micro-batch. float64, summed
    # in the same order as Python floats, so the logged values are the same bytes.
    pending: list[tuple[Any, Any]] = []

    def settle() -> None:
        if pending:
            values = torch.stack([torch.stack(p) for p in pending]).cpu().tolist()
            window.extend(v[0] for v in values)
            norms.extend(v[1] for v in values)
            pending.clear()

    extras: dict[str, list[float]] = {}
    start_time = time.perf_counter() - state.elapsed_s
    run_start, run_tokens = time.perf_counter(), 0
    result_start = state.step  # the first step of this process (it compiles, if asked)
    bar = tqdm(
        total=cfg.num_steps,
        initial=state.step,
        desc="train",
        unit="step",
        disable=(None if cfg.progress else True) if dist.is_main else True,
        file=sys.stderr,
    )
    loss_path = contextlib.ExitStack()
    try:
        loss_path.enter_context(fused_loss_forward(model, path))
        for step in range(state.step, cfg.num_steps):
            lr = lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            step_loss: Any = None
            for micro in range(cfg.grad_accum):
                try:
                    batch = next(stream)
                except StopIteration:
                    raise ValueError(
                        f"ran out of micro-batches at step {step} of {cfg.num_steps}"
                    ) from None
                # counted before the move: on the host, the count costs no device sync
                num_tokens, mask = batch.get("num_tokens"), batch.get("attention_mask")
                if num_tokens is not None:
                    n = int(num_tokens)
                elif mask is not None:
                    n = int(mask.sum())
                else:
                    n = batch["input_ids"].numel()
                batch = {
                    k: v.to(cfg.device, non_blocking=True)
                    for k, v in batch.items()
                    if k != "num_tokens"
                }
                autocast = (
                    torch.autocast(cfg.device.split(":")[0], dtype=torch.bfloat16)
                    if bf16
                    else contextlib.nullcontext()
                )
                with _grad_sync(model, micro == cfg.grad_accum - 1):
                    with autocast:  # the forward only: backward runs outside autocast
                        if loss_fn is None:
                            loss = model(**batch).loss / cfg.grad_accum
                        else:
                            full, parts = loss_fn(model, batch)
                            loss = full / cfg.grad_accum
                            for key, value in parts.items():
                                extras.setdefault(key, []).append(value)
                    loss.backward()
                part = loss.detach().double()
                step_loss = part if step_loss is None else step_loss + part
                state.tokens += n * dist.world_size
                run_tokens += n * dist.world_size
                state.micro_batches += 1
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            total = (
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                if cfg.grad_clip > 0
                else torch.nn.utils.get_total_norm(grads)
            )
            norm = (total.full_tensor() if hasattr(total, "full_tensor") else total).detach()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            state.step = step + 1
            if state.first_loss is None:
                state.first_loss = all_mean([float(step_loss)], dist)[0]
            pending.append((step_loss, norm.double().to(step_loss.device)))
            elapsed = time.perf_counter() - start_time
            bar.update(1)
            if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.num_steps:
                settle()
                mean_loss = all_mean([sum(window) / len(window)], dist)[0]
                run_s = time.perf_counter() - run_start
                tok_s = run_tokens / run_s if run_s else 0.0
                row = {
                    "step": step + 1,
                    "loss": mean_loss,
                    "lr": lr,
                    "grad_norm": sum(norms) / len(norms),
                    "tokens": state.tokens,
                    "tokens_per_s": tok_s,
                    "elapsed_s": elapsed,
                }
                if peak and cfg.flops_per_token:
                    row["mfu"] = tok_s / dist.world_size * cfg.flops_per_token / peak
                for key, values in extras.items():
                    row[key] = all_mean([sum(values) / len(values)], dist)[0]
                window, norms, extras = [], [], {}
                result.last_loss = mean_loss
                result.history.append(row)
                bar.set_postfix(loss=f"{mean_loss:.3f}", tok_s=f"{tok_s:.0f}")
                if metrics is not None:
                    metrics.write(orjson.dumps(row) + b"\n")
                    metrics.flush()
                if board is not None:
                    for key in ("loss", "lr", "grad_norm", "tokens_per_s", "mfu", "ce", "kl"):
                        if key in row:
                            board.add_scalar(f"train/{key}", row[key], step + 1)
                if on_log is not None:
                    on_log(row)
            state.elapsed_s = elapsed
            if (
                checkpoint_dir is not None
                and cfg.checkpoint_every
                and (step + 1) % cfg.checkpoint_every == 0
                and step + 1 < cfg.num_steps
            ):
                # ranks hold their own losses; the checkpoint keeps their mean (linear,
                # so later means over the window stay exact)
                settle()
                window = all_mean(window, dist)
                state.window, state.grad_norms = window, norms
                save_checkpoint(
                    checkpoint_dir, model, optimizer, state,
                    is_main=dist.is_main, keep=cfg.keep_checkpoints,
                )  # fmt: skip
                barrier(dist)
            if cfg.compile and step == result_start:
                # the first step compiled the model: leave it out of tokens/s
                run_start, run_tokens = time.perf_counter(), 0
            if cfg.max_seconds is not None and elapsed > cfg.max_seconds:
                result.stopped_early = step + 1 < cfg.num_steps
                break
    finally:
        loss_path.close()  # the model's own forward again
        bar.close()
        if metrics is not None:
            metrics.close()
        if board is not None:
            board.close()
    settle()
    if window:
        result.last_loss = all_mean([sum(window) / len(window)], dist)[0]
    result.steps = state.step
    result.tokens = state.tokens
    result.first_loss = state.first_loss if state.first_loss is not None else math.nan
    result.seconds = time.perf_counter() - start_time
    model.eval()
    return result
