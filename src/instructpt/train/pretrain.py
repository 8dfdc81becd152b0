"""The `pretrain` and `continue` stages: packed token shards in, a `save_pretrained` model out.

Pre-training builds a model from a preset (`presets.py`) sized for the
tokenizer of the token shards; continual pre-training (`init_from`) loads an
existing model directory or hub name and keeps its tokenizer and BOS/EOS
conventions: the shards must have been tokenized with that tokenizer (checked
by fingerprint, so a mismatch fails before any step, not after a day).

Layout of the output directory:
    config.yaml            resolved config (written before the first step)
    metrics.jsonl          one row per logged step (see `loop.py`)
    checkpoints/step-N/    the newest `keep_checkpoints` checkpoints (exact resume)
    model/                 the final model: safetensors + config + tokenizer files
    _manifest.json         written last; its presence means the stage is done
A rerun with the same config resumes from the newest checkpoint; a finished
stage is reused; a changed config is refused naming the changed keys.

Data order: sequences of `seq_len` tokens from the shards in a seeded
permutation per epoch (epoch e uses seed + e); rank r of w takes every w-th
sequence. Position = micro-batches consumed, so resume skips exactly those.

Distillation (`distill.teacher`, see `distill.py`): the loss mixes the usual
next-token CE with the KL to a teacher sharing the tokenizer (checked against
the tokenizer the student trains with), on every token of the packed sequences.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from instructpt.config import StageConfig
from instructpt.corpus.manifest import Manifest, ShardInfo, require_manifest
from instructpt.corpus.resume import open_stage_dir
from instructpt.corpus.runner import manifest_fingerprint
from instructpt.corpus.shards import file_sha256
from instructpt.errors import InputError
from instructpt.train.checkpoint import remove_stale_saves
from instructpt.train.distill import DistillConfig
from instructpt.train.presets import PRESETS, resolve_preset

STAGE = "pretrain"
MODEL_DIR = "model"
CHECKPOINT_DIR = "checkpoints"
METRICS_NAME = "metrics.jsonl"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
)


class ModelSpec(BaseModel):
    """A preset plus optional overrides of its dimensions (None = the preset's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: str = Field("demo-mistral", description=f"One of: {', '.join(PRESETS)}.")
    family: Literal["llama", "mistral", "gemma2"] | None = Field(
        None, description="Override the architecture family."
    )
    hidden_size: int | None = Field(None, ge=8)
    intermediate_size: int | None = Field(None, ge=8)
    num_layers: int | None = Field(None, ge=1)
    num_heads: int | None = Field(None, ge=1)
    num_kv_heads: int | None = Field(None, ge=1, description="Grouped-query attention KV heads.")
    head_dim: int | None = Field(None, ge=4)
    max_position_embeddings: int | None = Field(None, ge=2)
    tie_word_embeddings: bool | None = None
    sliding_window: int | None = Field(
        None, ge=1, description="gemma2: alternating layers; mistral: every layer."
    )
    attn_logit_softcapping: float | None = Field(None, ge=0, description="gemma2; 0 = off.")
    final_logit_softcapping: float | None = Field(None, ge=0, description="gemma2; 0 = off.")

    @model_validator(mode="after")
    def _preset_resolves(self) -> ModelSpec:
        resolve_preset(self.preset, self.overrides())
        return self

    def overrides(self) -> dict[str, Any]:
        return self.model_dump(exclude={"preset"}, exclude_none=True)


class PretrainConfig(StageConfig):
    """Packed tokens -> a trained causal LM (from scratch, or continued with `init_from`)."""

    runtime_fields: ClassVar[frozenset[str]] = frozenset(
        {
            "tokenizer", "device", "compile", "strategy", "checkpoint_every",
            "keep_checkpoints", "log_every", "tensorboard", "peak_tflops", "num_threads",
            "progress",
        }
    )  # fmt: skip

    tokens: str = Field(..., description="A tokenize stage directory (index.json + shards).")
    tokenizer: str | None = Field(
        None,
        description="Tokenizer directory saved next to the model (default: init_from's "
        "for continue; required for pretrain).",
    )
    init_from: str | None = Field(
        None, description="Continue pre-training this model directory or hub name."
    )
    trust_remote_code: bool = Field(False, description="Allow custom model code (init_from).")
    model: ModelSpec = Field(default_factory=ModelSpec, description="From scratch only.")
    seq_len: int | None = Field(None, ge=2, description="Default: the tokenize stage's.")
    micro_batch_size: int = Field(16, ge=1, description="Sequences per forward pass per rank.")
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    num_steps: int | None = Field(None, ge=1, description="Optimizer steps (wins over epochs).")
    num_tokens: int | None = Field(None, ge=1, description="Train on this many tokens.")
    epochs: float = Field(1.0, gt=0, description="Passes over the tokens (when no steps/tokens).")
    lr: float = Field(1e-3, gt=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    warmup_fraction: float = Field(0.05, ge=0, le=1, description="Share of steps warming up.")
    weight_decay: float = Field(0.1, ge=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.95, ge=0, lt=1)
    grad_clip: float = Field(1.0, ge=0, description="Max grad norm; 0 disables clipping.")
    seed: int = Field(1234, description="Model init and data order.")
    shuffle: bool = Field(True, description="Seeded permutation of sequences per epoch.")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto: bf16 autocast on CUDA, fp32 on CPU."
    )
    device: str = Field("auto", description="auto: cuda when available, else cpu.")
    compile: bool = Field(False, description="torch.compile the model.")
    activation_checkpointing: bool = Field(False, description="Recompute activations.")
    strategy: Literal["auto", "ddp", "fsdp"] = Field(
        "auto", description="Under torchrun: DDP, or FSDP2 sharding (auto: FSDP from 1B params)."
    )
    checkpoint_every: int = Field(200, ge=0, description="Steps between checkpoints; 0 = none.")
    keep_checkpoints: int = Field(2, ge=1)
    log_every: int = Field(10, ge=1)
    tensorboard: bool = Field(False, description="Also write TensorBoard events to tb/.")
    peak_tflops: float | None = Field(
        None, gt=0, description="Per-device peak for MFU (default: known GPUs' bf16 peak)."
    )
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads.")
    progress: bool = Field(True, description="Show a progress bar on a terminal.")
    distill: DistillConfig = Field(
        default_factory=DistillConfig,  # type: ignore[arg-type]
        description="Knowledge distillation from a teacher (off unless distill.teacher is set).",
    )

    def config_hash(self) -> str:
        # With distillation off the hash is the one of configs written before the
        # option existed, so finished pretrain directories stay reusable.
        skip = set(self.runtime_fields) | (set() if self.distill.enabled else {"distill"})
        data = self.model_dump(mode="json", exclude=skip)
        blob = json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @model_validator(mode="after")
    def _scratch_or_continue(self) -> PretrainConfig:
        if self.init_from is None and self.tokenizer is None:
            raise ValueError("tokenizer is required when training from scratch (no init_from)")
        if self.init_from is not None and self.model != ModelSpec():
            raise ValueError(
                "model options apply to training from scratch; with init_from the "
                "model's own config is used"
            )
        return self


@dataclass
class PretrainResult:
    out_dir: Path
    manifest: Manifest
    reused: bool

    @property
    def model_dir(self) -> Path:
        return self.out_dir / MODEL_DIR

    def summary_lines(self) -> list[str]:
        st = self.manifest.stats
        what = "reused" if self.reused else "trained"
        if not self.reused and st.get("resumed_from_step"):
            what = f"resumed at step {st['resumed_from_step']} and trained"
        return [
            f"pretrain: {what} {self.model_dir} ({st['parameters']:,} parameters), "
            f"{st['steps']} steps, {st['tokens']:,} tokens, loss {st['first_loss']:.3f} -> "
            f"{st['last_loss']:.3f}, {st['tokens_per_s']:,.0f} tokens/s"
        ]


def plan_steps(cfg: PretrainConfig, num_sequences: int, seq_len: int, world_size: int) -> int:
    """Optimizer steps from num_steps, num_tokens or epochs (in that order)."""
    per_step = cfg.micro_batch_size * cfg.grad_accum * world_size
    if cfg.num_steps is not None:
        return cfg.num_steps
    if cfg.num_tokens is not None:
        steps = math.ceil(cfg.num_tokens / (per_step * seq_len))
    else:
        steps = math.floor(cfg.epochs * num_sequences / per_step)
    if steps < 1:
        raise InputError(
            f"{num_sequences} sequences of {seq_len} tokens are fewer than one step of "
            f"{per_step} sequences (micro_batch_size x grad_accum x ranks); lower them "
            f"or give more data"
        )
    return steps


def packed_batches(
    packed: Any, cfg: PretrainConfig, start: int, rank: int, world_size: int
) -> Iterator[dict[str, Any]]:
    """Micro-batches of this rank from number `start` on, across epochs, deterministically."""
    import torch

    per_epoch = len(packed.order(None, rank, world_size)) // cfg.micro_batch_size
    if per_epoch < 1:
        raise InputError("fewer sequences per rank than one micro-batch")
    epoch, skip = divmod(start, per_epoch)
    while True:
        seed = cfg.seed + epoch if cfg.shuffle else None
        for batch in packed.iter_batches(
            cfg.micro_batch_size,
            seed=seed,
            start=skip * cfg.micro_batch_size,
            rank=rank,
            world_size=world_size,
        ):
            ids = torch.from_numpy(batch)
            yield {"input_ids": ids, "labels": ids}
        epoch, skip = epoch + 1, 0


def _load_init_model(cfg: PretrainConfig) -> tuple[Any, Path | None]:
    """The model to continue from, and the local folder of its tokenizer files."""
    from transformers import AutoModelForCausalLM

    src = cfg.init_from
    assert src is not None
    local = Path(src)
    if not local.exists() and ("/" not in src or src.startswith((".", "/"))):
        raise InputError(f"init_from {src!r}: no such model directory")
    try:
        model = AutoModelForCausalLM.from_pretrained(
            src, trust_remote_code=cfg.trust_remote_code, use_safetensors=True
        ).float()  # fp32 master weights whatever the saved dtype; autocast does bf16
    except OSError as exc:
        raise InputError(f"init_from {src!r} could not be loaded: {exc}") from None
    if local.is_dir():
        return model, local
    from huggingface_hub import snapshot_download

    return model, Path(snapshot_download(src, allow_patterns=list(TOKENIZER_FILES)))


def _check_tokenizer(tok_dir: Path, index: dict[str, Any], what: str) -> None:
    from instructpt.pack.tokenizer import load_tokenizer_spec

    spec = load_tokenizer_spec(tok_dir)
    if spec.fingerprint != index.get("tokenizer_fingerprint"):
        raise InputError(
            f"the token shards were made with another tokenizer than {what} ({tok_dir}): "
            f"fingerprint {index.get('tokenizer_fingerprint')} != {spec.fingerprint}. "
            f"Re-tokenize with `instructpt tokenize --tokenizer {tok_dir}`."
        )


def pretrain(cfg: PretrainConfig, out_dir: Path, overwrite: bool = False) -> PretrainResult:
    """Train (or resume, or reuse) the model of `cfg` into `out_dir` (rank 0 writes)."""
    import torch

    from instructpt.pack.reader import PackedTokens
    from instructpt.synth.engines.hf import resolve_device
    from instructpt.train import distributed as D
    from instructpt.train.loop import loop_config_from, train_loop
    from instructpt.train.presets import build_model, count_parameters, flops_per_token

    tokens_dir = Path(cfg.tokens)
    tokens_manifest = require_manifest(tokens_dir, "tokenize")
    fingerprint = manifest_fingerprint(tokens_manifest) + (
        f"|{cfg.init_from}" if cfg.init_from else ""
    )
    if cfg.distill.enabled:
        fingerprint += f"|teacher={cfg.distill.teacher}"
    dist, device = D.init_distributed(resolve_device(cfg.device))
    try:
        if dist.is_main:
            opened = open_stage_dir(out_dir, STAGE, cfg, fingerprint, overwrite)
            done = opened.done
            if done is None:
                remove_stale_saves(out_dir, (MODEL_DIR,))
        D.barrier(dist)
        if not dist.is_main:
            from instructpt.corpus.manifest import read_manifest

            done = read_manifest(out_dir)
        if done is not None:
            return PretrainResult(out_dir, done, reused=True)
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        packed = PackedTokens(tokens_dir, cfg.seq_len)
        if cfg.init_from is not None:
            model, init_tok = _load_init_model(cfg)
            tok_dir = Path(cfg.tokenizer) if cfg.tokenizer else init_tok
            assert tok_dir is not None
            _check_tokenizer(tok_dir, packed.index, f"the model {cfg.init_from}")
            if packed.vocab_size > model.config.vocab_size:
                raise InputError(
                    f"tokens use {packed.vocab_size} ids but {cfg.init_from} has "
                    f"{model.config.vocab_size} embeddings"
                )
        else:
            tok_dir = Path(cfg.tokenizer)  # type: ignore[arg-type]
            _check_tokenizer(tok_dir, packed.index, "tokenizer")
            preset = resolve_preset(cfg.model.preset, cfg.model.overrides())
            model = build_model(
                preset, packed.vocab_size, packed.index["bos_id"], packed.index["eos_id"], cfg.seed
            )
        loss_fn = None
        if cfg.distill.enabled:
            from instructpt.train.distill import DistillLoss, load_teacher

            loss_fn = DistillLoss(load_teacher(cfg.distill, tok_dir, device), cfg.distill)
        params = count_parameters(model)
        steps = plan_steps(cfg, packed.num_sequences, packed.seq_len, dist.world_size)
        model.to(device)
        wrapped = D.wrap_model(model, dist, cfg.strategy, device)
        loop_cfg = loop_config_from(
            cfg,
            steps,
            device,
            compile=cfg.compile,
            flops_per_token=flops_per_token(model, packed.seq_len),
            peak_flops=cfg.peak_tflops * 1e12 if cfg.peak_tflops else None,
            tensorboard_dir=str(out_dir / "tb") if cfg.tensorboard else None,
        )
        result = train_loop(
            wrapped,
            lambda start: packed_batches(packed, cfg, start, dist.rank, dist.world_size),
            loop_cfg,
            metrics_path=out_dir / METRICS_NAME,
            checkpoint_dir=out_dir / CHECKPOINT_DIR,
            dist=dist,
            loss_fn=loss_fn,
        )
        final = _save_final(model, wrapped, dist, tok_dir, out_dir)
        stats = {
            "parameters": params["total"],
            "tokens": result.tokens,
            "seq_len": packed.seq_len,
            "world_size": dist.world_size,
            "device": device,
            "init_from": cfg.init_from,
            "mfu": result.history[-1].get("mfu") if result.history else None,
            **result.stats(cfg.distill.enabled),
        }
        manifest = Manifest(
            stage=STAGE,
            config_hash=cfg.config_hash(),
            input_fingerprint=fingerprint,
            format="safetensors",
            shards=final,
            stats=stats,
        )
        if dist.is_main:
            opened.finish(manifest)
        D.barrier(dist)
        return PretrainResult(out_dir, manifest, reused=False)
    finally:
        D.shutdown(dist)


def _save_final(
    model: Any, wrapped: Any, dist: Any, tok_dir: Path | None, out_dir: Path, tokenizer: Any = None
) -> list[ShardInfo]:
    """save_pretrained (safetensors) + tokenizer into model/, atomically by rename.

    The tokenizer is `tokenizer.save_pretrained` when given, else the files of `tok_dir`.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(
        wrapped, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
    )
    if not dist.is_main:
        return []
    if getattr(model.config, "tie_word_embeddings", False):
        # gathered shards no longer share memory: keep the tie, not a copy
        head = model.get_output_embeddings()
        state.pop(next(n for n, m in model.named_modules() if m is head) + ".weight", None)
    final = out_dir / MODEL_DIR
    tmp = out_dir / f"{MODEL_DIR}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.config.use_cache = True  # for generate() and serving
    model.save_pretrained(tmp, state_dict=state, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(tmp)
    elif tok_dir is not None:
        for name in TOKENIZER_FILES:
            if (tok_dir / name).is_file():
                shutil.copy2(tok_dir / name, tmp / name)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return [
        ShardInfo(f"{MODEL_DIR}/{p.name}", 1, file_sha256(p), p.stat().st_size)
        for p in sorted(final.iterdir())
    ]


def read_metrics(out_dir: Path) -> list[dict[str, Any]]:
    """The logged rows of a pretrain directory (for reports)."""
    path = out_dir / METRICS_NAME
    if not path.is_file():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
