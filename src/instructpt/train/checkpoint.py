"""Training checkpoints for exact resume: model, optimizer, RNG and position, no pickle.

A checkpoint is a folder `step-NNNNNNNN/` holding
- `model.safetensors`: the full model state (parameter names as keys);
- `optimizer.safetensors`: every optimizer state tensor as `<param name>/<key>`;
- `trainer_state.json`: step, data position, counters, the open loss window,
  the optimizer's param groups, and which tensors are RNG states;
- `rng.safetensors`: torch CPU (and CUDA) generator states.
safetensors and JSON only, so loading a checkpoint never unpickles anything.

State dicts go through `torch.distributed.checkpoint.state_dict`, which gives
parameter-name keys for a plain module, DDP and FSDP2 alike (gathered to full
tensors on CPU); only rank 0 writes. A folder is written as `step-N.tmp-<pid>`
and renamed into place, so a kill leaves either the old set of checkpoints or
the new one; the newest complete folder is the resume point.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from instructpt.core.atomic import atomic_write_bytes

CKPT_RE = re.compile(r"^step-(\d{8})$")
STATE_NAME = "trainer_state.json"


@dataclass
class TrainerState:
    """Everything besides tensors that decides what the next step does."""

    step: int = 0  # optimizer steps done
    micro_batches: int = 0  # micro-batches consumed by this rank
    tokens: int = 0  # tokens trained on, all ranks
    elapsed_s: float = 0.0  # training wall time before this process
    first_loss: float | None = None
    window: list[float] | None = None  # losses of steps since the last log row
    grad_norms: list[float] | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _options(full: bool = True) -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=full, cpu_offload=True)


def remove_stale_saves(out_dir: Path, names: tuple[str, ...]) -> None:
    """Drop the `<name>.tmp-<pid>` folders of a run killed while saving its final output.

    Final models are written to such a folder and renamed into place, so a kill in
    between leaves one that no later run would touch: a full copy of the weights.
    """
    for name in names:
        for tmp in out_dir.glob(f"{name}.tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete `step-N` folder under `folder`, or None."""
    if not folder.is_dir():
        return None
    found = sorted(p for p in folder.iterdir() if CKPT_RE.match(p.name) and p.is_dir())
    return found[-1] if found else None


def save_checkpoint(
    folder: Path, model: Any, optimizer: Any, state: TrainerState, *, is_main: bool, keep: int
) -> Path | None:
    """Write checkpoint `step-<state.step>` (all ranks call: gathering is collective)."""
    import torch
    from safetensors.torch import save_file
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_sd, optim_sd = get_state_dict(model, optimizer, options=_options())
    if not is_main:
        return None
    final = folder / f"step-{state.step:08d}"
    tmp = folder / f"{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    unique, aliases = _split_tied(model_sd)
    save_file(unique, tmp / "model.safetensors")
    tensors: dict[str, torch.Tensor] = {}
    for name, slots in optim_sd["state"].items():
        for key, value in slots.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{name}/{key}"] = t.detach().cpu().contiguous()
    save_file(tensors, tmp / "optimizer.safetensors")
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            rng[f"cuda.{i}"] = s
    save_file(rng, tmp / "rng.safetensors")
    meta = {
        "trainer": state.to_json(),
        "param_groups": optim_sd["param_groups"],
        "tied": aliases,
    }
    atomic_write_bytes(tmp / STATE_NAME, orjson.dumps(meta, option=orjson.OPT_INDENT_2))
    if final.exists():  # a rerun of the same step after a kill before pruning
        shutil.rmtree(final)
    os.replace(tmp, final)
    _prune(folder, keep)
    return final


def _split_tied(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Tensors once each (safetensors refuses shared memory), and alias -> kept name."""
    unique: dict[str, Any] = {}
    seen: dict[tuple[int, tuple[int, ...]], str] = {}
    aliases: dict[str, str] = {}
    for name, tensor in state.items():
        key = (tensor.data_ptr(), tuple(tensor.shape))
        if key in seen:
            aliases[name] = seen[key]
        else:
            seen[key] = name
            unique[name] = tensor.contiguous()
    return unique, aliases


def _prune(folder: Path, keep: int) -> None:
    done = sorted(p for p in folder.iterdir() if CKPT_RE.match(p.name))
    for old in done[: max(0, len(done) - keep)]:
        shutil.rmtree(old, ignore_errors=True)
    for tmp in folder.glob("step-*.tmp-*"):
        if not tmp.name.endswith(f".tmp-{os.getpid()}"):
            shutil.rmtree(tmp, ignore_errors=True)


def load_checkpoint(path: Path, model: Any, optimizer: Any) -> TrainerState:
    """Restore model, optimizer and RNG in place (all ranks call); return the trainer state."""
    import torch
    from safetensors.torch import load_file
    from torch.distributed.checkpoint.state_dict import set_state_dict

    meta = orjson.loads((path / STATE_NAME).read_bytes())
    model_sd = load_file(path / "model.safetensors")
    for alias, name in meta.get("tied", {}).items():
        model_sd[alias] = model_sd[name]
    flat = load_file(path / "optimizer.safetensors")
    slots: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        name, _, slot = key.rpartition("/")
        slots.setdefault(name, {})[slot] = value
    groups = meta["param_groups"]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    set_state_dict(
        model,
        optimizer,
        model_state_dict=model_sd,
        optim_state_dict={"state": slots, "param_groups": groups},
        options=_options(),
    )
    rng = load_file(path / "rng.safetensors")
    torch.set_rng_state(rng["torch"])
    cuda = [rng[k] for k in sorted(rng) if k.startswith("cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    return TrainerState(**meta["trainer"])
