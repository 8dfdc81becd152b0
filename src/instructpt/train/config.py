"""Configs of the training stages: pretrain/continue, sft, train-synthesizer, distillation."""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from instructpt.core.config import StageConfig
from instructpt.train.presets import PRESETS, resolve_preset


class DistillConfig(BaseModel):
    """`distill:` section of pretrain, continue and sft; off while `teacher` is unset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    teacher: str | None = Field(
        None,
        description="Teacher model directory (or hub name) sharing the student's tokenizer; "
        "unset: no distillation.",
    )
    temperature: float = Field(2.0, gt=0, description="Softmax temperature T of both models.")
    alpha: float = Field(
        0.5, ge=0, le=1, description="Weight of the T^2-scaled KL term; 1 - alpha weighs the CE."
    )
    trust_remote_code: bool = Field(False, description="Allow the teacher's custom model code.")

    @property
    def enabled(self) -> bool:
        return self.teacher is not None


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


class TrainConfig(StageConfig):
    """Keys that pretrain, continue and sft share: one name, default and meaning each.

    Keys whose default or meaning differs by stage (inputs, batch size, schedule,
    seed) stay in the stage's class; `loop.loop_config_from` maps both onto the loop.
    """

    runtime_fields: ClassVar[frozenset[str]] = frozenset(
        {
            "device", "checkpoint_every", "keep_checkpoints", "log_every", "num_threads",
            "progress", "fused_loss",
        }
    )  # fmt: skip

    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    num_steps: int | None = Field(None, ge=1, description="Optimizer steps (wins over epochs).")
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.95, ge=0, lt=1)
    grad_clip: float = Field(1.0, ge=0, description="Max grad norm; 0 disables clipping.")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto: bf16 autocast on CUDA, fp32 on CPU."
    )
    device: str = Field("auto", description="auto: cuda when available, else cpu.")
    activation_checkpointing: bool = Field(False, description="Recompute activations.")
    fused_loss: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Chunked linear cross-entropy (train/linear_ce.py): the head and loss "
        "without the full logits, same loss and gradients. auto: where it applies (not with "
        "final logit soft-capping, a LoRA or biased head, FSDP, distillation); on: fail "
        "where it does not; off: the model's own loss. The path used is the manifest's "
        "loss_path. Runtime only: the config hash ignores it.",
    )
    checkpoint_every: int = Field(200, ge=0, description="Steps between checkpoints; 0 = none.")
    keep_checkpoints: int = Field(2, ge=1)
    log_every: int = Field(10, ge=1)
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads.")
    progress: bool = Field(True, description="Show a progress bar on a terminal.")
    distill: DistillConfig = Field(
        default_factory=DistillConfig,  # type: ignore[arg-type]
        description="Knowledge distillation from a teacher (off unless distill.teacher is set).",
    )


class PretrainConfig(TrainConfig):
    """Packed tokens -> a trained causal LM (from scratch, or continued with `init_from`)."""

    runtime_fields: ClassVar[frozenset[str]] = TrainConfig.runtime_fields | {
        "tokenizer", "compile", "strategy", "tensorboard", "peak_tflops",
    }  # fmt: skip

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
    num_tokens: int | None = Field(None, ge=1, description="Train on this many tokens.")
    epochs: float = Field(1.0, gt=0, description="Passes over the tokens (when no steps/tokens).")
    lr: float = Field(1e-3, gt=0)
    warmup_fraction: float = Field(0.05, ge=0, le=1, description="Share of steps warming up.")
    weight_decay: float = Field(0.1, ge=0)
    seed: int = Field(1234, description="Model init and data order.")
    shuffle: bool = Field(True, description="Seeded permutation of sequences per epoch.")
    compile: bool = Field(False, description="torch.compile the model.")
    strategy: Literal["auto", "ddp", "fsdp"] = Field(
        "auto", description="Under torchrun: DDP, or FSDP2 sharding (auto: FSDP from 1B params)."
    )
    tensorboard: bool = Field(False, description="Also write TensorBoard events to tb/.")
    peak_tflops: float | None = Field(
        None, gt=0, description="Per-device peak for MFU (default: known GPUs' bf16 peak)."
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


class LoraSpec(BaseModel):
    """`lora:` section; LoRA is on when `r > 0`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    r: int = Field(0, ge=0, description="LoRA rank; 0 = full fine-tuning (no LoRA).")
    alpha: float = Field(16.0, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["all-linear"],
        description="Module names to adapt (e.g. q_proj v_proj); all-linear: every linear "
        "layer but the output head.",
    )
    merge: bool = Field(False, description="Also save the merged full model to model/.")

    @property
    def enabled(self) -> bool:
        return self.r > 0


class SftConfig(TrainConfig):
    """Instruction records -> a model tuned to answer them (loss on the answers only)."""

    model: str = Field(..., description="Model directory (or hub name) to tune.")
    data: list[str] = Field(
        ...,
        min_length=1,
        description="Instruction files or globs: jsonl (gz/zst) or parquet; Alpaca "
        "(instruction, input, output) or chat (messages) records.",
    )
    trust_remote_code: bool = Field(False, description="Allow the model's custom code.")
    template: Literal["auto", "model", "plain", "qa"] = Field(
        "auto",
        description="auto: the tokenizer's chat template, else plain; model: require the "
        "tokenizer's; plain: the built-in ### User/### Assistant template; qa: the built-in "
        "`Question:`/`Answer:` template of the world probe.",
    )
    on_error: Literal["skip", "fail"] = Field(
        "skip", description="skip: count bad records and go on; fail: stop at the first one."
    )
    seq_len: int = Field(1024, ge=8, description="Tokens per (packed) sequence; longer cut.")
    packing: bool = Field(True, description="Pack several examples into one sequence.")
    micro_batch_size: int = Field(8, ge=1, description="Sequences per forward pass.")
    epochs: float = Field(3.0, gt=0, description="Passes over the examples.")
    lr: float = Field(1e-4, gt=0, description="Peak learning rate (LoRA likes ~10x full FT).")
    warmup_fraction: float = Field(0.03, ge=0, le=1, description="Share of steps warming up.")
    weight_decay: float = Field(0.0, ge=0)
    seed: int = Field(1234, description="Packing order, data order, LoRA init.")
    lora: LoraSpec = Field(default_factory=LoraSpec)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _check(self) -> SftConfig:
        if self.lora.enabled and self.activation_checkpointing:
            raise ValueError("activation_checkpointing with lora is not supported; drop one")
        return self


class TrainSynthesizerConfig(BaseModel):
    """Synthesizer fine-tuning; the defaults train the CPU demo synthesizer from the world."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    seed: int = Field(0, description="Seed of sampling, packing order and initialisation.")
    # --- data
    world_dir: str | None = Field(
        None, description="Demo world directory (documents.jsonl, qa.jsonl); None: not used."
    )
    world_train_groups: list[str] = Field(
        default_factory=lambda: ["synth_train"], description="World groups to train on."
    )
    world_eval_groups: list[str] = Field(
        default_factory=lambda: ["augment", "probe"],
        description="World groups whose texts are the held-out evaluation.",
    )
    world_pairs_min: int = Field(2, ge=1, description="Fewest true pairs sampled per world text.")
    world_pairs_max: int = Field(4, ge=1, description="Most true pairs sampled per world text.")
    world_pairs_all: bool = Field(
        False,
        description="Ask every attribute of a world text once (world_pairs_min/max unused): "
        "the model learns to close with </s> when the facts run out.",
    )
    world_kinds: list[Literal["open", "mc", "cot"]] = Field(
        default_factory=lambda: ["open", "mc"],
        description="QA kinds to sample (the demo leaves out cot: see the module docstring).",
    )
    world_mc_share: float = Field(
        0.15, ge=0, le=1, description="Share of facts asked as multiple choice, not open."
    )
    world_pair_order: Literal["text", "attribute", "random"] = Field(
        "text",
        description="Order of a text's pairs: as the facts appear in it, in the world's "
        "attribute order (the same for every person), or random.",
    )
    world_rename_people: bool = Field(
        True, description="Give training people a fresh name each epoch (augmentation)."
    )
    rows_paths: list[str] = Field(
        default_factory=list,
        description="JSONL files of rows with a context, a list of QA pairs and a source name, "
        "or the asset name context-qa (fetched on first use).",
    )
    squad_paths: list[str] = Field(
        default_factory=list, description="SQuAD-style JSON files (source: the file stem)."
    )
    eval_fraction: float = Field(
        0.05, ge=0, lt=1, description="Records held out for evaluation when there is no world."
    )
    rows_per_source: int | None = Field(
        None,
        ge=1,
        description="Rows/SQuAD records drawn per source and epoch (a fresh seeded sample "
        "each epoch); None: all of them every epoch.",
    )
    num_eval_passages: int = Field(
        0,
        ge=0,
        description="With a world: also hold out this many rows per source of "
        "eval_passage_sources and evaluate on them (real passages).",
    )
    eval_passage_sources: list[str] = Field(
        default_factory=lambda: ["squad", "drop"],
        description="Sources whose held-out rows are the real-passage evaluation.",
    )
    world_eval_types: list[str] | None = Field(
        None, description="Entity types of the held-out world texts (e.g. [person]); None: all."
    )
    # --- model
    base_model: str | None = Field(
        None,
        description="HF causal LM dir, hub name or model asset (smollm2-135m-instruct, fetched "
        "on first use); None: a fresh tiny Llama (demo).",
    )
    vocab_size: int = Field(1024, ge=300, description="Fresh tokenizer only: BPE vocabulary.")
    hidden_size: int = Field(128, ge=16, description="Fresh model only.")
    num_layers: int = Field(4, ge=1, description="Fresh model only.")
    num_heads: int = Field(4, ge=1, description="Fresh model only.")
    num_kv_heads: int = Field(4, ge=1, description="Fresh model only.")
    intermediate_size: int = Field(384, ge=16, description="Fresh model only: MLP width.")
    max_position_embeddings: int = Field(
        4096, ge=64, description="Fresh model only (the released synthesizer's context: 4096)."
    )
    lora: LoraSpec = Field(
        default_factory=LoraSpec,
        description="LoRA on the base model (r > 0); always merged into the saved model.",
    )
    # --- training
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="auto: bf16 autocast on CUDA, fp32 on CPU; bf16 also pays on CPUs with "
        "AVX512-BF16 (1.7x for SmolLM2-135M, benchmarks/RESULTS.md).",
    )
    seq_len: int = Field(768, ge=64, description="Tokens per packed sequence.")
    batch_size: int = Field(2, ge=1, description="Packed sequences per micro-batch.")
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    num_epochs: int = Field(20, ge=1, description="Passes over the data (world: fresh pairs each).")
    max_steps: int | None = Field(None, ge=1, description="Cap on optimizer steps.")
    lr: float = Field(3e-3, gt=0, description="Peak learning rate.")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Cosine floor as a share of lr.")
    lm_phase_ratio: float | None = Field(
        None,
        ge=0,
        le=1,
        description=(
            "Share of the first steps with loss on all tokens (context too), a stand-in for "
            "pre-training a fresh model; None: 0.3 for a fresh model, 0 for a base_model."
        ),
    )
    copy_phase_ratio: float = Field(
        0.0,
        ge=0,
        le=2,
        description=(
            "Extra steps of synthetic copy sequences first, as a share of the data's steps "
            "(meant to form the attention circuit that copies names and values out of the "
            "context; measured in benchmarks/RESULTS.md: it did not help the demo model, so 0)."
        ),
    )
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Share of steps of linear warmup.")
    weight_decay: float = Field(0.1, ge=0, description="AdamW weight decay (matrices only).")
    grad_clip: float = Field(1.0, ge=0, description="Max global grad norm; 0: off.")
    max_seconds: float | None = Field(
        None, gt=0, description="Stop training after this many seconds (a safety net)."
    )
    device: str = Field("auto", description="auto (cuda when available, else cpu), cpu, cuda.")
    progress: bool = Field(True, description="Show progress bars on a terminal.")
    # --- evaluation
    num_eval_texts: int = Field(100, ge=0, description="Held-out texts to evaluate; 0: skip.")
    eval_max_new_tokens: int = Field(160, ge=1, description="Generation budget per eval text.")
    eval_batch_size: int = Field(16, ge=1, description="Prompts per generate call in eval.")
    baseline_shots: int = Field(
        0,
        ge=0,
        description="With a base_model: also score the untrained base model prompted with "
        "this many training examples on the same held-out texts (the baseline); 0: skip.",
    )
    question_match_threshold: float = Field(
        0.5, ge=0, le=1, description="Question-stem token F1 needed to match a gold pair."
    )

    @model_validator(mode="after")
    def _check(self) -> TrainSynthesizerConfig:
        if self.world_pairs_min > self.world_pairs_max:
            raise ValueError("world_pairs_min must be <= world_pairs_max")
        if self.world_dir is None and not self.rows_paths and not self.squad_paths:
            raise ValueError("no training data: set world_dir, rows_paths or squad_paths")
        if self.base_model is None and self.lora.enabled:
            raise ValueError("lora needs a base_model (a fresh model trains in full)")
        if self.base_model is None and self.hidden_size % self.num_heads:
            raise ValueError("hidden_size must be a multiple of num_heads")
        if self.base_model is None and self.num_heads % self.num_kv_heads:
            raise ValueError("num_heads must be a multiple of num_kv_heads")
        return self

    @property
    def world_num_pairs(self) -> tuple[int, int] | None:
        """Pairs per world text for `world_to_records`: (min, max), or None for every attribute."""
        return None if self.world_pairs_all else (self.world_pairs_min, self.world_pairs_max)

    def config_hash(self) -> str:
        data = self.model_dump(mode="json", exclude={"progress", "device", "world_dir"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
