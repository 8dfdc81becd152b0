"""The evaluate stage's config and its named task presets."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from instructpt.core.config import StageConfig

#: Named task lists with their own shots: (num_fewshot, tasks) per lm-eval call.
PRESETS: dict[str, tuple[tuple[int, tuple[str, ...]], ...]] = {
    # Cheng et al. 2024, "Instruction Pre-Training", general-model evaluation.
    "paper": (
        (0, ("piqa", "hellaswag", "winogrande")),
        (5, ("social_iqa", "arc_easy", "arc_challenge", "openbookqa", "boolq", "mmlu")),
    ),
}


class EvaluateConfig(StageConfig):
    """One model, a list of lm-eval tasks (or presets), and how to run them."""

    runtime_fields: ClassVar[frozenset[str]] = frozenset({"offline"})

    model: str = Field(
        ..., description="Model to evaluate: a save_pretrained directory or a hub name."
    )
    tasks: list[str] = Field(
        ...,
        min_length=1,
        description="lm-eval task, group or tag names, task YAML paths, or the preset "
        f"{sorted(PRESETS)}; comma-separated strings are split.",
    )
    include_path: list[str] = Field(
        default_factory=list,
        description="Folders of local task YAMLs (e.g. the world probe's task folder).",
    )
    num_fewshot: int | None = Field(
        None,
        ge=0,
        description="Shots for every task; unset: each task's default (0 when it has none). "
        "Presets carry their own shots, so leave it unset with them.",
    )
    batch_size: int = Field(8, ge=1, description="Requests per forward pass.")
    device: str = Field("cpu", description="Torch device: cpu, cuda, cuda:N, mps.")
    limit: int | None = Field(
        None, ge=1, description="Evaluate only the first N items of each task (smoke runs)."
    )
    add_bos_token: bool = Field(
        True, description="Prepend BOS to every request, as the paper's protocol does."
    )
    apply_chat_template: bool = Field(
        False,
        description="Render each prompt through the model's chat template as a user turn "
        "(lm-eval's --apply_chat_template), for instruction-tuned models; the answer is "
        "scored right after the assistant header, with no space before it.",
    )
    trust_remote_code: bool = Field(False, description="Allow model code from the hub (off: safe).")
    seed: int = Field(
        1234,
        description="Seed of python, numpy, torch and the few-shot sampler "
        "(lm-eval's default few-shot seed is 1234 too).",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype; auto: as saved in the model's config."
    )
    offline: bool = Field(
        False,
        description="Never touch the network: set HF_HUB_OFFLINE and HF_DATASETS_OFFLINE "
        "for this evaluation only (local models and local task data).",
    )

    @field_validator("tasks", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        # `--tasks a,b` as lm-eval's CLI takes it; paths (include_path) are never split.
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            return [p.strip() for v in value for p in str(v).split(",") if p.strip()]
        return value

    @field_validator("include_path", mode="before")
    @classmethod
    def _one_path_is_a_list(cls, value: object) -> object:
        if isinstance(value, str | Path):
            value = [value]
        if isinstance(value, list | tuple):
            return [str(v) if isinstance(v, Path) else v for v in value]
        return value

    @model_validator(mode="after")
    def _presets_carry_their_shots(self) -> EvaluateConfig:
        if self.num_fewshot is not None and any(t in PRESETS for t in self.tasks):
            raise ValueError(
                "num_fewshot must be unset when tasks holds a preset "
                f"({', '.join(t for t in self.tasks if t in PRESETS)}): the preset sets the "
                "shots of each of its tasks; list the tasks by name to choose the shots yourself"
            )
        return self
