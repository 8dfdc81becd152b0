"""LoRA adapters (peft) for sft and synthesizer training, with errors that name the config key."""

from __future__ import annotations

from typing import Any

from instructpt.errors import InputError
from instructpt.train.config import LoraSpec


def add_lora(model: Any, spec: LoraSpec) -> Any:
    """`model` wrapped by peft with `spec`'s adapters; only they require grad."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise InputError("lora.r > 0 needs peft: pip install 'instructpt[lora]' (or peft)") from exc
    targets: Any = spec.target_modules
    if targets == ["all-linear"]:
        targets = "all-linear"
    config = LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise InputError(f"lora.target_modules {spec.target_modules}: {exc}") from None
