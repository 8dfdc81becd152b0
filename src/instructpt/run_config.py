"""The run-level config of `instructpt run`: every stage's section, and the demo's defaults.

It imports each stage's config at module level (every arrow points down: stages
never import this module) and validates each section before any work starts."""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from instructpt.core.config import PLAIN_NAME, _format_errors
from instructpt.corpus.config import IngestConfig  # moved
from instructpt.synth.config import (  # moved
    SynthesizeConfig,
)
from instructpt.world.config import WorldConfig  # moved

RUN_STAGES = (
    "world",
    "ingest",
    "train-synthesizer",
    "synthesize",
    "filter",
    "cook",
    "tokenizer",
    "mix",
    "tokenize",
    "pretrain",
    "evaluate",
    "tune",
    "magpie",
    "report",
)


#: The demo's world: few people, each written up 4 times in other words (paraphrase
#: diversity lets a small model store facts in an extractable form; Allen-Zhu & Li 2023).
DEMO_WORLD: dict[str, Any] = {
    "num_people": 100, "num_countries": 3, "num_cities": 10,
    "num_universities": 5, "num_companies": 10, "texts_per_entity": 4,
}  # fmt: skip


#: The demo's pairs: the model-free miner (its `biography` pairs are all correct on the
#: world; the small demo synthesizer's are ~1% correct, see README "Train a synthesizer").
DEMO_SYNTHESIZE: dict[str, Any] = {
    "engine": "miner",
    "miner": {"families": ["biography", "fact"], "max_per_family": 12, "max_pairs": 16},
}


#: The demo's cooking: questions before the text, so they are answered from memory
#: (after the text they can be answered by copying from it, which teaches no recall).
DEMO_COOK: dict[str, Any] = {"layouts": ["pairs_first"]}


#: The demo's pre-training: three ~1M-parameter models, same steps and tokens each.
DEMO_PRETRAIN: dict[str, Any] = {
    "model": {"preset": "demo-llama"},
    "micro_batch_size": 16,
    "epochs": 22,
    "lr": 0.004,
    "checkpoint_every": 100,
}


#: The demo's evaluation: the world knowledge probe, multiple choice by log-likelihood.
DEMO_EVALUATE: dict[str, Any] = {"tasks": ["world_probe_mc"], "batch_size": 32}


#: The demo's instruction tuning, the same for every variant: full fine-tuning on the
#: augment entities' questions in the probe's own `Question:`/`Answer:` chat template,
#: so the tuned models are scored with exactly the prompt they were tuned on.
DEMO_TUNE: dict[str, Any] = {
    "template": "qa",
    "seq_len": 256,
    "micro_batch_size": 4,
    "epochs": 10,
    "lr": 3e-4,
}


#: The demo's Magpie: the tuned instruct model writes questions from its template's
#: opening alone; tiny budgets, as a world question and its answer are a few words.
DEMO_MAGPIE: dict[str, Any] = {
    "template": "auto",
    "num_queries": 200,
    "max_query_tokens": 32,
    "max_response_tokens": 16,
}


#: `instructpt run --quick`: the whole loop at toy size (a few minutes on 2 CPU cores);
#: a config file and flags still override these.
QUICK_RUN: dict[str, Any] = {
    "name": "quick",
    "world": {**DEMO_WORLD, "num_people": 40, "num_cities": 6, "num_companies": 6,
              "num_universities": 3, "texts_per_entity": 2},
    "pretrain": {**DEMO_PRETRAIN, "epochs": 8},
    "evaluate": dict(DEMO_EVALUATE),
    "magpie": {**DEMO_MAGPIE, "num_queries": 50},
}  # fmt: skip


class RunConfig(BaseModel):
    """The main job: every stage's config under its own key, plus where to write.

    Stage sections hold that stage's keys; paths between stages are filled in
    by `run` from the run-directory layout, so they are left out here.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("demo", pattern=PLAIN_NAME, description="Run name: runs/<name>/.")
    runs_root: str = Field("runs", description="Folder holding run directories.")
    until: Literal[RUN_STAGES] = Field(  # type: ignore[valid-type]
        "report", description="Last stage to run (the rest are listed as not run)."
    )
    world: WorldConfig = Field(default_factory=lambda: WorldConfig(**DEMO_WORLD))
    ingest: dict[str, Any] = Field(default_factory=dict, description="IngestConfig keys.")
    synthesizer: dict[str, Any] = Field(
        default_factory=dict, description="TrainSynthesizerConfig keys (the demo synthesizer)."
    )
    synthesize: dict[str, Any] = Field(
        default_factory=lambda: copy.deepcopy(DEMO_SYNTHESIZE),
        description="SynthesizeConfig keys (engine miner by default; with another engine, "
        "model defaults to the trained demo synthesizer).",
    )
    filter: dict[str, Any] | None = Field(
        None,
        description="FilterConfig keys; set (even to {}) to filter pairs between synthesize "
        "and cook (runs/<name>/filtered/); None: no filter stage.",
    )
    cook: dict[str, Any] = Field(
        default_factory=lambda: copy.deepcopy(DEMO_COOK), description="CookConfig keys."
    )
    tokenizer: dict[str, Any] = Field(
        default_factory=lambda: {"vocab_size": 2048}, description="TokenizerTrainConfig keys."
    )
    mix: dict[str, Any] = Field(
        default_factory=dict, description="MixConfig keys shared by the three demo variants."
    )
    tokenize: dict[str, Any] = Field(
        default_factory=lambda: {"seq_len": 256}, description="TokenizeConfig keys."
    )
    pretrain: dict[str, Any] = Field(
        default_factory=lambda: copy.deepcopy(DEMO_PRETRAIN),
        description="PretrainConfig keys shared by the vanilla, mix and instruct models.",
    )
    evaluate: dict[str, Any] = Field(
        default_factory=lambda: dict(DEMO_EVALUATE),
        description="EvaluateConfig keys (default: the world knowledge probe).",
    )
    tune: dict[str, Any] | None = Field(
        default_factory=lambda: copy.deepcopy(DEMO_TUNE),
        description="SftConfig keys shared by the tuned vanilla, mix and instruct models "
        "(tuned/<variant>/, evaluated into eval/tuned/); None: no tune stage.",
    )
    magpie: dict[str, Any] | None = Field(
        default_factory=lambda: copy.deepcopy(DEMO_MAGPIE),
        description="MagpieConfig keys, run on the tuned instruct model (magpie/); "
        "None: no magpie stage.",
    )

    @model_validator(mode="after")
    def _sections_are_valid(self) -> RunConfig:
        # Validate each section now, with placeholder paths, so a typo fails before any work.
        from instructpt.cook.config import CookConfig
        from instructpt.evaluate.config import EvaluateConfig
        from instructpt.mix.config import MixConfig
        from instructpt.pack.config import TokenizeConfig, TokenizerTrainConfig
        from instructpt.train.config import PretrainConfig, TrainSynthesizerConfig

        checks: list[tuple[str, type[BaseModel], dict[str, Any]]] = [
            ("ingest", IngestConfig, {"input": ["<world>"]}),
            ("synthesizer", TrainSynthesizerConfig, {"world_dir": "<world>"}),
            ("synthesize", SynthesizeConfig, {"model": "<synthesizer>"}),
            ("cook", CookConfig, {}),
            ("tokenizer", TokenizerTrainConfig, {"input": ["<corpus>"]}),
            ("mix", MixConfig, {"recipe": "vanilla", "tokenizer": "<t>", "corpus": "<c>"}),
            ("tokenize", TokenizeConfig, {"tokenizer": "<t>"}),
            ("pretrain", PretrainConfig, {"tokens": "<t>", "tokenizer": "<t>"}),
            ("evaluate", EvaluateConfig, {"model": "<m>", "tasks": ["world_probe_mc"]}),
        ]
        if self.filter is not None:
            from instructpt.filter.config import FilterConfig

            checks.append(("filter", FilterConfig, {}))
        if self.tune is not None:
            from instructpt.train.config import SftConfig

            checks.append(("tune", SftConfig, {"model": "<m>", "data": ["<tune>"]}))
        if self.magpie is not None:
            from instructpt.magpie.config import MagpieConfig

            checks.append(("magpie", MagpieConfig, {"model": "<m>"}))
        for section, model, placeholders in checks:
            try:
                model.model_validate({**placeholders, **getattr(self, section)})
            except ValidationError as err:
                raise ValueError(_format_errors(model, err, f"the {section} section")) from None
        lora = (self.tune or {}).get("lora") or {}
        if lora.get("r") and not lora.get("merge"):
            raise ValueError(
                "tune.lora needs merge: true in a run: the tuned models are evaluated "
                "(and asked by magpie) as whole models"
            )
        return self

    def ingest_config(self, default_input: list[str]) -> IngestConfig:
        return IngestConfig.model_validate({"input": default_input, **self.ingest})
