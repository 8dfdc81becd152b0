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

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from instructpt.core.manifest import Manifest, require_manifest
from instructpt.core.runner import manifest_fingerprint
from instructpt.core.tokenizers import load_tokenizer_spec
from instructpt.errors import InputError
from instructpt.pack.reader import PackedTokens
from instructpt.train import distributed as D
from instructpt.train.config import PretrainConfig
from instructpt.train.distill import distill_loss_fn
from instructpt.train.loop import loop_config_from
from instructpt.train.presets import build_model, count_parameters, flops_per_token, resolve_preset
from instructpt.train.stage import (
    METRICS_NAME,
    MODEL_DIR,
    TOKENIZER_FILES,
    open_training_stage,
    plan_steps,
    save_final_model,
)

STAGE = "pretrain"


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
    spec = load_tokenizer_spec(tok_dir)
    if spec.fingerprint != index.get("tokenizer_fingerprint"):
        raise InputError(
            f"the token shards were made with another tokenizer than {what} ({tok_dir}): "
            f"fingerprint {index.get('tokenizer_fingerprint')} != {spec.fingerprint}. "
            f"Re-tokenize with `instructpt tokenize --tokenizer {tok_dir}`."
        )


def pretrain(cfg: PretrainConfig, out_dir: Path, overwrite: bool = False) -> PretrainResult:
    """Train (or resume, or reuse) the model of `cfg` into `out_dir` (rank 0 writes)."""
    tokens_dir = Path(cfg.tokens)
    tokens_manifest = require_manifest(tokens_dir, "tokenize")
    fingerprint = manifest_fingerprint(tokens_manifest) + (
        f"|{cfg.init_from}" if cfg.init_from else ""
    )
    if cfg.distill.enabled:
        fingerprint += f"|teacher={cfg.distill.teacher}"
    with open_training_stage(out_dir, STAGE, cfg, fingerprint, overwrite, (MODEL_DIR,)) as run:
        if run.done is not None:
            return PretrainResult(out_dir, run.done, reused=True)
        dist, device = run.dist, run.device
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
        loss_fn = distill_loss_fn(cfg.distill, tok_dir, device)
        params = count_parameters(model)
        steps = plan_steps(
            cfg,
            packed.num_sequences,
            dist.world_size,
            seq_len=packed.seq_len,
            num_tokens=cfg.num_tokens,
        )
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
        result = run.train(
            wrapped,
            lambda start: packed_batches(packed, cfg, start, dist.rank, dist.world_size),
            loop_cfg,
            loss_fn,
        )
        final = save_final_model(model, wrapped, dist, out_dir, tok_dir=tok_dir)
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
        return PretrainResult(out_dir, run.finish(final, stats), reused=False)


def read_metrics(out_dir: Path) -> list[dict[str, Any]]:
    """The logged rows of a pretrain directory (for reports)."""
    path = out_dir / METRICS_NAME
    if not path.is_file():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
