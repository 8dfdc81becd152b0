"""Knowledge distillation: train a student on a teacher's token distributions.

Gemma 2 trained its small models on a larger teacher's next-token
distributions instead of one-hot next tokens (Gemma Team 2024, section 3.2);
the loss is Hinton et al.'s (2015):

    loss = (1 - alpha) * CE(student, labels) + alpha * T^2 * KL(p_teacher^T || p_student^T)

where p^T = softmax(logits / T). T^2 keeps the gradient scale of the soft
term independent of T. Both terms are means over the tokens that carry loss
(labels != -100 after the usual one-position shift), so prompt tokens of
instruction tuning stay out of the KL as they stay out of the CE.

The teacher runs in eval mode under `torch.inference_mode` and sees exactly
the student's inputs (input ids, attention mask or packed position ids). It
must share the student's tokenizer, or the two distributions are over
different things: `load_teacher` compares vocabularies and fails before the
first step otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from instructpt.errors import InputError
from instructpt.train.config import DistillConfig

IGNORE_INDEX = -100


def kl_per_token(student_logits: Any, teacher_logits: Any, temperature: float) -> Any:
    """KL(teacher || student) of the tempered distributions, one value per position."""
    import torch.nn.functional as F

    log_s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_t = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    return (log_t.exp() * (log_t - log_s)).sum(-1)


def distill_loss(
    student_logits: Any, teacher_logits: Any, labels: Any, temperature: float, alpha: float
) -> tuple[Any, Any, Any]:
    """(loss, ce, kl): the mixed loss and its parts, means over loss-carrying tokens.

    Logits at position t predict the label at t + 1 (the shift the HF models
    apply to `labels`); logits of different widths (a vocabulary padded for
    speed) are compared over the shared leading ids.
    """
    import torch.nn.functional as F

    width = min(student_logits.shape[-1], teacher_logits.shape[-1])
    s = student_logits[:, :-1, :width]
    t = teacher_logits[:, :-1, :width]
    target = labels[:, 1:]
    keep = target != IGNORE_INDEX
    count = keep.sum().clamp(min=1)  # a batch without loss tokens gives 0, not NaN
    ce = (
        F.cross_entropy(
            student_logits[:, :-1].float().flatten(0, 1),
            target.flatten(),
            ignore_index=IGNORE_INDEX,
            reduction="sum",
        )
        / count
    )
    kl = kl_per_token(s[keep], t[keep], temperature).sum() / count
    loss = (1 - alpha) * ce + alpha * temperature**2 * kl
    return loss, ce, kl


class DistillLoss:
    """The training loop's `loss_fn`: student forward, teacher forward, mixed loss."""

    def __init__(self, teacher: Any, cfg: DistillConfig) -> None:
        self.teacher = teacher
        self.temperature = cfg.temperature
        self.alpha = cfg.alpha

    def __call__(self, model: Any, batch: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        import torch

        inputs = {k: v for k, v in batch.items() if k != "labels"}
        student = model(**inputs).logits
        with torch.inference_mode():
            teacher = self.teacher(**inputs).logits
        # inference tensors cannot be saved for backward; a clone outside the mode can
        teacher = teacher.clone()
        loss, ce, kl = distill_loss(student, teacher, batch["labels"], self.temperature, self.alpha)
        return loss, {"ce": float(ce.detach()), "kl": float(kl.detach())}


def _vocab(source: str | Path, trust_remote_code: bool = False) -> dict[str, int]:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(source), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise InputError(f"tokenizer of {source} could not be loaded: {exc}") from None
    return tok.get_vocab()


def check_same_tokenizer(teacher: str | Path, student: str | Path, trust_remote_code: bool) -> None:
    """Fail unless teacher and student tokenizers map the same strings to the same ids."""
    t_vocab, s_vocab = _vocab(teacher, trust_remote_code), _vocab(student)
    if t_vocab == s_vocab:
        return
    only_t = sorted(set(t_vocab) - set(s_vocab))[:5]
    only_s = sorted(set(s_vocab) - set(t_vocab))[:5]
    moved = sorted(k for k in set(t_vocab) & set(s_vocab) if t_vocab[k] != s_vocab[k])[:5]
    raise InputError(
        f"distill.teacher {teacher} has another tokenizer than the student ({student}): "
        f"vocab sizes {len(t_vocab)} vs {len(s_vocab)}; only in the teacher: {only_t}, "
        f"only in the student: {only_s}, different ids: {moved}. Distillation compares "
        f"distributions id by id, so both models must share one tokenizer."
    )


def load_teacher(cfg: DistillConfig, student_tokenizer: str | Path, device: str) -> Any:
    """The teacher model, tokenizer-checked, in eval mode on `device`, gradients off."""
    import torch
    from transformers import AutoModelForCausalLM

    assert cfg.teacher is not None
    src = cfg.teacher
    if not Path(src).exists() and ("/" not in src or src.startswith((".", "/"))):
        raise InputError(f"distill.teacher {src!r}: no such model directory")
    check_same_tokenizer(src, student_tokenizer, cfg.trust_remote_code)
    try:
        teacher = AutoModelForCausalLM.from_pretrained(
            src, trust_remote_code=cfg.trust_remote_code, dtype=torch.float32, use_safetensors=True
        )
    except OSError as exc:
        raise InputError(f"distill.teacher {src!r} could not be loaded: {exc}") from None
    teacher.config.use_cache = False  # a training-shaped forward; packed position ids need it
    teacher.to(device).eval()
    teacher.requires_grad_(False)
    return teacher


def distill_loss_fn(
    cfg: DistillConfig, student_tokenizer: str | Path, device: str
) -> DistillLoss | None:
    """The training loop's `loss_fn` for `cfg`: None (plain CE) while distillation is off."""
    if not cfg.enabled:
        return None
    return DistillLoss(load_teacher(cfg, student_tokenizer, device), cfg)
