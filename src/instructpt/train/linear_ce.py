"""Chunked linear cross-entropy: the LM head and its next-token loss without the full logits.

Why: at a 32k vocabulary the [tokens, vocab] logits (plus their fp32 upcast, softmax
and gradient) are the largest activations of a small model's training step, and
every elementwise pass over them streams gigabytes. `ChunkedLinearCrossEntropy`
computes, per chunk of rows, the logits, their log-sum-exp, the loss and at once the
gradients w.r.t. the hidden states and the head weight while the chunk's logits are
still in cache, then drops them. Same FLOPs as `lm_head` + `cross_entropy` + autograd;
on CPU 1.47-1.52x the step speed at small hidden sizes, 1.03-1.09x at larger ones
(benchmarks/RESULTS.md, "Training loop vs HF Trainer").

Exactness: the loss is the mean over the tokens whose (shifted) label is not -100,
as `transformers`' `ForCausalLMLoss` without `num_items_in_batch`; the gradients are
the analytic ones, (softmax - one-hot) / count, so fp32 results equal the plain
path's up to summation order (~1e-6 relative). Under bf16 autocast the logits come
from a bf16 matmul and are upcast before the softmax, as the plain path does; the
weight gradient accumulates in fp32 across chunks. A batch with no loss tokens gives
0 (the plain path gives NaN).

`fused_loss_forward` installs it in a `transformers` causal LM for the training loop
by replacing the instance's `forward` (state dict, tied weights, DDP hooks unchanged)
and restores it afterwards; `unsupported_reason` says where it cannot apply and the
plain `model(**batch).loss` is kept: final logit soft-capping (gemma2), a head with a
bias or wrapped by LoRA, FSDP2-sharded models, unknown architectures.

Limits: the gradients are computed during the forward (the loss is a scalar, so its
backward only scales them); a second backward through the same graph is refused.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch

IGNORE_INDEX = -100

#: `model_type`s whose `XForCausalLM.forward` is, in the installed transformers,
#: decoder -> `lm_head(last_hidden_state)` -> `ForCausalLMLoss` with nothing else
#: (tests/train/test_linear_ce.py compares their source with Llama's).
SPLITTABLE = frozenset(
    {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "olmo2", "phi3", "smollm3"}
)
#: Config attributes that transform the logits after the head: such models keep the plain path.
LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling")
#: Logit elements per chunk: ~8 MiB of fp32 on CPU (cache-sized; the prototype's 512 rows
#: at 4k vocab), ~256 MiB on a GPU (2048 rows at 32k: large enough matmuls).
CHUNK_ELEMENTS = {"cpu": 2**21, "cuda": 2**26}


def chunk_rows(vocab: int, device: torch.device) -> int:
    """Rows per chunk so a chunk's logits hold about `CHUNK_ELEMENTS` values."""
    budget = CHUNK_ELEMENTS.get(device.type, CHUNK_ELEMENTS["cuda"])
    return max(16, budget // max(1, vocab))


class ChunkedLinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of `hidden @ weight.T` against `targets` (-100 ignored), chunk by chunk.

    Inputs: hidden [N, H], weight [V, H], targets [N] (already shifted), rows per
    chunk, and the matmul dtype (float32, or bfloat16 under autocast).
    """

    @staticmethod
    def forward(
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        targets: torch.Tensor,
        chunk: int,
        dtype: torch.dtype,
    ) -> torch.Tensor:
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        w = weight.to(dtype)
        keep = targets != IGNORE_INDEX
        count = keep.sum().clamp(min=1)  # a tensor: no host sync
        scale = keep.to(torch.float32) / count  # each row's weight in the mean
        safe = torch.where(keep, targets, 0)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_hidden = torch.empty_like(hidden) if need_h else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if need_w else None
        for i in range(0, hidden.shape[0], chunk):
            h = hidden[i : i + chunk].to(dtype)
            t, s = safe[i : i + chunk], scale[i : i + chunk]
            logits = (h @ w.t()).float()  # as the plain path: matmul in `dtype`, loss in fp32
            lse = torch.logsumexp(logits, dim=-1)
            picked = logits.gather(1, t[:, None]).squeeze(1)
            total += ((lse - picked) * keep[i : i + chunk]).sum()
            if not (need_h or need_w):
                continue
            probs = logits.sub_(lse[:, None]).exp_()  # softmax, in place
            probs.scatter_add_(1, t[:, None], probs.new_full((len(t), 1), -1.0))
            g = probs.mul_(s[:, None]).to(dtype)  # d loss / d logits; ignored rows are 0
            if grad_hidden is not None:
                grad_hidden[i : i + chunk] = g @ w
            if grad_weight is not None:
                if dtype == torch.float32:
                    grad_weight.addmm_(g.t(), h)
                else:  # a bf16 product (fp32 accumulation inside), summed in fp32
                    grad_weight += g.t() @ h
        ctx.grads = (grad_hidden, grad_weight)
        return total / count

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        if ctx.grads is None:
            raise RuntimeError("ChunkedLinearCrossEntropy: backward may run only once")
        grad_hidden, grad_weight = ctx.grads
        ctx.grads = None  # scaled in place below: free them, refuse a second backward
        if grad_hidden is not None:
            grad_hidden.mul_(grad.to(grad_hidden.dtype))
        if grad_weight is not None:
            grad_weight = grad_weight.mul_(grad.float())
        return grad_hidden, grad_weight, None, None, None


@torch.compiler.disable  # eager even inside a compiled model: a graph break, not a retrace
def linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, chunk: int | None = None
) -> torch.Tensor:
    """Next-token loss of a causal LM from its last hidden states [B, T, H] and head weight.

    Labels are unshifted [B, T] (position t predicts labels[:, t + 1]), as passed to
    the model; under autocast the matmuls run in the autocast dtype.
    """
    device = hidden.device
    targets = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)  # HF's shift
    dtype = torch.float32
    if torch.is_autocast_enabled(device.type):
        dtype = torch.get_autocast_dtype(device.type)
    rows = chunk or chunk_rows(weight.shape[0], device)
    with torch.autocast(device.type, enabled=False):
        return ChunkedLinearCrossEntropy.apply(
            hidden.reshape(-1, hidden.shape[-1]),
            weight,
            targets.reshape(-1).to(device),
            rows,
            dtype,
        )


def _split_forward(self: Any, *args: Any, labels: Any = None, **kwargs: Any) -> Any:
    """`XForCausalLM.forward` with the head and loss fused; the plain one when not training."""
    cls_forward = type(self).forward
    plain = (
        labels is None
        or args  # positional inputs: keep the model's own signature handling
        or not torch.is_grad_enabled()
        or kwargs.get("logits_to_keep", 0) != 0
        or "num_items_in_batch" in kwargs
        or "shift_labels" in kwargs
        or kwargs.get("use_cache")
    )
    if plain:
        return cls_forward(self, *args, labels=labels, **kwargs)
    from transformers.modeling_outputs import CausalLMOutputWithPast

    kwargs.pop("logits_to_keep", None)
    outputs = getattr(self, self.base_model_prefix)(**kwargs)
    head = self.get_output_embeddings()
    loss = linear_cross_entropy(outputs.last_hidden_state, head.weight, labels)
    return CausalLMOutputWithPast(loss=loss, logits=None)


def _inner(model: Any) -> Any:
    """The `transformers` model inside DDP and peft wrappers."""
    from torch.nn.parallel import DistributedDataParallel

    if isinstance(model, DistributedDataParallel):
        model = model.module
    get_base = getattr(model, "get_base_model", None)  # peft's PeftModel
    return get_base() if callable(get_base) else model


def unsupported_reason(model: Any) -> str | None:
    """Why the chunked loss cannot replace `model`'s own, or None when it can."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # pragma: no cover - torch without distributed
        FSDPModule = ()
    if isinstance(model, FSDPModule) or any(isinstance(m, FSDPModule) for m in model.modules()):
        return "FSDP2-sharded model (the head's weight is sharded)"
    inner = _inner(model)
    config = getattr(inner, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type not in SPLITTABLE:
        return f"model type {model_type!r} is not one whose forward is known to split"
    for name in LOGIT_TRANSFORMS:
        if getattr(config, name, None):
            return f"{name} = {getattr(config, name)} transforms the logits"
    head = inner.get_output_embeddings()
    if type(head) is not torch.nn.Linear:
        return f"the output head is a {type(head).__name__} (e.g. LoRA-wrapped), not a Linear"
    if head.bias is not None:
        return "the output head has a bias"
    if "forward" in vars(inner):
        return "the model's forward is already replaced on the instance"
    return None


@dataclass(frozen=True)
class LossPath:
    """Which loss the loop computed, recorded in metrics and manifests."""

    name: Literal["chunked-ce", "model", "loss_fn"]
    reason: str | None = None  # why not chunked-ce


def choose_loss_path(model: Any, mode: str, custom_loss: bool = False) -> LossPath:
    """The path `fused_loss: mode` (auto, on, off) gives for `model`; `on` raises where the
    chunked loss cannot apply, `auto` falls back to the model's own loss."""
    if mode == "off":
        return LossPath("model", "fused_loss: off")
    if custom_loss:
        reason = "a custom loss_fn (distillation) computes the loss from the logits"
    else:
        reason = unsupported_reason(model)
    if reason is None:
        return LossPath("chunked-ce")
    if mode == "on":
        raise ValueError(f"fused_loss: on, but the chunked loss cannot apply: {reason}")
    return LossPath("loss_fn" if custom_loss else "model", reason)


@contextlib.contextmanager
def fused_loss_forward(model: Any, path: LossPath) -> Iterator[LossPath]:
    """Within the block `model(**batch).loss` is the chunked loss if `path` says so."""
    if path.name != "chunked-ce":
        yield path
        return
    inner = _inner(model)
    inner.forward = types.MethodType(_split_forward, inner)
    try:
        yield path
    finally:
        del inner.forward  # the class's forward again
