"""What the stages pretrain, continue and sft share around the training loop.

- `open_training_stage`: join the torchrun group (if any); rank 0 opens the
  stage directory (resume, reuse when finished, or refuse a changed config)
  while the other ranks wait, then every rank learns whether the stage is done.
- `plan_steps`: optimizer steps from `num_steps`, tokens or epochs.
- `TrainingStage.train`: the shared loop with the stage's metrics and checkpoints.
- `save_final_model` / `publish_folder`: outputs written to `<name>.tmp-<pid>`
  and renamed into place, so a kill never leaves a half-written model/.
- `TrainingStage.finish`: rank 0 publishes the manifest; every rank gets it.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructpt.core.devices import resolve_device
from instructpt.core.manifest import Manifest, ShardInfo, read_manifest
from instructpt.core.resume import StageDir, open_stage_dir
from instructpt.core.shards import file_sha256
from instructpt.errors import InputError
from instructpt.train import distributed as D
from instructpt.train.checkpoint import remove_stale_saves
from instructpt.train.config import PretrainConfig, SftConfig, TrainConfig
from instructpt.train.loop import LoopConfig, LoopResult, train_loop

MODEL_DIR = "model"
CHECKPOINT_DIR = "checkpoints"
METRICS_NAME = "metrics.jsonl"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
)


@dataclass
class TrainingStage:
    """An opened training stage on this rank: `done` is set when it already finished."""

    out_dir: Path
    stage: str
    cfg: TrainConfig
    input_fingerprint: str
    dist: D.Dist
    device: str
    done: Manifest | None
    opened: StageDir | None  # rank 0 only

    def train(self, wrapped: Any, batches: Any, loop_cfg: LoopConfig, loss_fn: Any) -> LoopResult:
        return train_loop(
            wrapped,
            batches,
            loop_cfg,
            metrics_path=self.out_dir / METRICS_NAME,
            checkpoint_dir=self.out_dir / CHECKPOINT_DIR,
            dist=self.dist,
            loss_fn=loss_fn,
        )

    def finish(self, shards: list[ShardInfo], stats: dict[str, Any]) -> Manifest:
        """The stage's manifest, published by rank 0 (the stage is done from here on)."""
        manifest = Manifest(
            stage=self.stage,
            config_hash=self.cfg.config_hash(),
            input_fingerprint=self.input_fingerprint,
            format="safetensors",
            shards=shards,
            stats=stats,
        )
        if self.opened is not None:
            self.opened.finish(manifest)
        D.barrier(self.dist)
        return manifest


@contextmanager
def open_training_stage(
    out_dir: Path,
    stage: str,
    cfg: TrainConfig,
    input_fingerprint: str,
    overwrite: bool,
    outputs: tuple[str, ...],
) -> Iterator[TrainingStage]:
    """Open `out_dir` for `stage` on every rank; leave the process group on exit.

    `outputs`: the folders published by rename, whose temps a killed run left behind.
    """
    dist, device = D.init_distributed(resolve_device(cfg.device))
    try:
        opened = None
        if dist.is_main:
            opened = open_stage_dir(out_dir, stage, cfg, input_fingerprint, overwrite)
            if opened.done is None:
                remove_stale_saves(out_dir, outputs)
        D.barrier(dist)
        done = opened.done if opened is not None else read_manifest(out_dir)
        if done is None and cfg.num_threads:
            import torch

            torch.set_num_threads(cfg.num_threads)
        yield TrainingStage(out_dir, stage, cfg, input_fingerprint, dist, device, done, opened)
    finally:
        D.shutdown(dist)


def plan_steps(
    cfg: PretrainConfig | SftConfig,
    num_sequences: int,
    world_size: int,
    *,
    seq_len: int | None = None,
    num_tokens: int | None = None,
) -> int:
    """Optimizer steps from `num_steps`, `num_tokens` (pretrain) or epochs, in that order."""
    per_step = cfg.micro_batch_size * cfg.grad_accum * world_size
    if cfg.num_steps is not None:
        return cfg.num_steps
    if num_tokens is not None:
        assert seq_len is not None
        steps = math.ceil(num_tokens / (per_step * seq_len))
    else:
        steps = math.floor(cfg.epochs * num_sequences / per_step)
    if steps < 1:
        what = f"{num_sequences} sequences" + (f" of {seq_len} tokens" if seq_len else "")
        raise InputError(
            f"{what} are fewer than one step of {per_step} sequences "
            f"(micro_batch_size x grad_accum x ranks); lower them or give more data"
        )
    return steps


def publish_folder(out_dir: Path, name: str, write: Callable[[Path], None]) -> list[ShardInfo]:
    """`write` a folder at a temp path, rename it to `out_dir/name`; its files as shards."""
    final = out_dir / name
    tmp = out_dir / f"{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return [
        ShardInfo(f"{name}/{p.name}", 1, file_sha256(p), p.stat().st_size)
        for p in sorted(final.iterdir())
        if p.is_file()
    ]


def save_final_model(
    model: Any,
    wrapped: Any,
    dist: D.Dist,
    out_dir: Path,
    *,
    tok_dir: Path | None = None,
    tokenizer: Any = None,
) -> list[ShardInfo]:
    """save_pretrained (safetensors) + tokenizer into model/ (all ranks call: gathering).

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

    def write(tmp: Path) -> None:
        model.config.use_cache = True  # for generate() and serving
        model.save_pretrained(tmp, state_dict=state, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        elif tok_dir is not None:
            for name in TOKENIZER_FILES:
                if (tok_dir / name).is_file():
                    shutil.copy2(tok_dir / name, tmp / name)

    return publish_folder(out_dir, MODEL_DIR, write)
