"""One process or many: the torchrun environment, model wrapping, and small collectives.

Launch many with torchrun; each process reads RANK/WORLD_SIZE/LOCAL_RANK:

    torchrun --nproc_per_node 8 -m instructpt pretrain --config pretrain.yaml

- `ddp` (DistributedDataParallel) replicates the model: best while weights,
  gradients and AdamW state (16 bytes/parameter in fp32) fit one device,
  i.e. up to roughly 1B parameters on an 80 GB GPU.
- `fsdp` (FSDP2, `torch.distributed.fsdp.fully_shard`, each decoder layer
  sharded, then the root) shards parameters, gradients and optimizer state:
  for models that do not fit replicated.
- `auto`: fsdp from 1B parameters, ddp below.
On CPU the gloo backend is used (tests run two processes that way); on CUDA nccl.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

Strategy = Literal["auto", "ddp", "fsdp"]
FSDP_FROM_PARAMS = 1_000_000_000


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str) -> tuple[Dist, str]:
    """Join the process group torchrun set up (if any); return it and this rank's device."""
    import torch

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), device
    import torch.distributed as td

    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not td.is_initialized():
        td.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return Dist(rank, world, local), device


def shutdown(dist: Dist) -> None:
    if dist.enabled:
        import torch.distributed as td

        if td.is_initialized():
            td.destroy_process_group()


def choose_strategy(strategy: Strategy, num_params: int) -> Literal["ddp", "fsdp"]:
    if strategy != "auto":
        return strategy
    return "fsdp" if num_params >= FSDP_FROM_PARAMS else "ddp"


def wrap_model(model: Any, dist: Dist, strategy: Strategy, device: str) -> Any:
    """The model as the training loop drives it (unchanged in one process)."""
    if not dist.enabled:
        return model
    num_params = sum(p.numel() for p in model.parameters())
    if choose_strategy(strategy, num_params) == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ids = [dist.local_rank] if device.startswith("cuda") else None
        return DistributedDataParallel(model, device_ids=ids)
    import torch
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mp = (
        MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        if device.startswith("cuda")
        else MixedPrecisionPolicy()
    )
    for layer in model.model.layers:
        fully_shard(layer, mp_policy=mp)
    fully_shard(model, mp_policy=mp)
    return model


def unwrap(model: Any) -> Any:
    """The Hugging Face model inside a DDP wrapper (FSDP2 shards in place)."""
    return getattr(model, "module", model)


def all_mean(values: list[float], dist: Dist) -> list[float]:
    """Mean of each value across ranks (identity in one process)."""
    if not dist.enabled or not values:
        return values
    import torch
    import torch.distributed as td

    t = torch.tensor(values, dtype=torch.float64)
    if td.get_backend() == "nccl":
        t = t.cuda()
    td.all_reduce(t)
    return (t / dist.world_size).cpu().tolist()


def barrier(dist: Dist) -> None:
    if dist.enabled:
        import torch.distributed as td

        td.barrier()
