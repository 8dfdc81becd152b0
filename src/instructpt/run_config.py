"""The run-level config of `instructpt run`: every stage's section, and the demo's defaults.

It imports each stage's config at module level (every arrow points down: stages
never import this module) and validates each section before any work starts."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from instructpt.cook.config import CookConfig
from instructpt.core.config import PLAIN_NAME, _format_errors
from instructpt.core.layout import PAPER_VARIANTS, RunLayout
from instructpt.corpus.config import IngestConfig
from instructpt.evaluate.config import EvaluateConfig
from instructpt.evaluate.probe import GEN_FEWSHOT_TASK, GEN_TASK, MC_TASK, PROBE_TAG
from instructpt.filter.config import FilterConfig
from instructpt.magpie.config import MagpieConfig
from instructpt.mine.config import ALL_FAMILIES
from instructpt.mix.config import MixConfig
from instructpt.pack.config import TokenizeConfig, TokenizerTrainConfig
from instructpt.synth.config import SynthesizeConfig
from instructpt.train.config import PretrainConfig, SftConfig, TrainSynthesizerConfig
from instructpt.world.config import WorldConfig

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


#: The demo's world: few people, each written up 4 times in other words, and named in
#: full in every sentence (paraphrase diversity and the "fullname" augmentation let a
#: small model store facts in an extractable form; Allen-Zhu & Li 2023; RESULTS.md
#: "What moved recall").
DEMO_WORLD: dict[str, Any] = {
    "num_people": 100, "num_countries": 3, "num_cities": 10,
    "num_universities": 5, "num_companies": 10, "texts_per_entity": 4, "full_names": True,
}  # fmt: skip


#: The demo's pairs: the model-free miner (its `biography` pairs are all correct on the
#: world; the small demo synthesizer's are ~1% correct, see README "Train a synthesizer").
DEMO_SYNTHESIZE: dict[str, Any] = {
    "engine": "miner",
    "miner": {"families": ["biography", "fact"], "max_per_family": 12, "max_pairs": 16},
}


#: The demo's cooking: questions before the text, so they are answered from memory
#: (after the text they can be answered by copying from it, which teaches no recall),
#: in one fixed "Question: ...\nAnswer: ..." format, the probe's own (the Physics of LMs
#: protocol: QA is trained and tested in one format).
DEMO_COOK: dict[str, Any] = {"layouts": ["pairs_first"], "templates": ["pf.002", "qa.001"]}


#: The demo's pre-training: three ~1M-parameter models, same steps and tokens each.
DEMO_PRETRAIN: dict[str, Any] = {
    "model": {"preset": "demo-llama"},
    "micro_batch_size": 16,
    "epochs": 33,  # ~130 exposures of each fact (4 renderings x 33); 22 gave half the recall
    "lr": 0.004,
    "checkpoint_every": 100,
}


#: The demo's evaluation: the world knowledge probe, multiple choice by log-likelihood
#: and generative recall (greedy, exact match), both zero-shot. Two independent lm-eval
#: tasks: adding the second leaves the first's numbers as they were.
DEMO_EVALUATE: dict[str, Any] = {"tasks": [MC_TASK, GEN_TASK], "batch_size": 32}


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


#: Pairs for a user's corpus when its config names no `synthesize` section: the miner's
#: general-purpose families (AdaptLLM's), without `biography`, which reads the demo
#: world's one-person texts.
CORPUS_SYNTHESIZE: dict[str, Any] = {
    "engine": "miner",
    "miner": {"families": [f for f in ALL_FAMILIES if f != "biography"]},
}


#: Cooking for a user's corpus when its config names no `cook` section: questions first,
#: in every template of the layout (the paper's variety). The demo's single
#: "Question:/Answer:" format is there to match the world probe's prompt, which a
#: user's corpus does not have.
CORPUS_COOK: dict[str, Any] = {"layouts": ["pairs_first"]}


#: Continued pre-training of a `base_model` when the config names no `pretrain` section:
#: one pass over the largest mix at a learning rate a pre-trained model survives (the
#: demo's 4e-3 would wreck it); the base model's own architecture, so no `model` keys.
BASE_MODEL_PRETRAIN: dict[str, Any] = {"epochs": 1, "lr": 2e-5, "checkpoint_every": 100}


#: Evaluation tasks written from the demo world (`instructpt.evaluate.probe`).
WORLD_PROBE_TASKS = frozenset({MC_TASK, GEN_TASK, GEN_FEWSHOT_TASK, PROBE_TAG})


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


class CorpusSource(BaseModel):
    """A user's own files as the run's input, instead of the generated world.

    Each list holds files, folders or globs, read as `instructpt ingest` reads them
    (the run's `ingest` section sets format, fields and shards for all of them).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: list[str] = Field(
        min_length=1, description="The pre-training corpus (ingested into corpus/)."
    )
    augment: list[str] | None = Field(
        None,
        description="Texts to instruction-augment (corpus-augment/); None: the whole corpus.",
    )
    general: list[str] = Field(
        default_factory=list,
        description="General instruction data as plain text records, for the mix variant "
        "(left out of the variants when empty).",
    )
    tune: list[str] = Field(
        default_factory=list,
        description="Chat records (`messages`) tuning every variant; empty: no tune stage.",
    )


class RunConfig(BaseModel):
    """The main job: every stage's config under its own key, plus where to write.

    Stage sections hold that stage's keys; paths between stages are filled in
    by `run` from the run-directory layout (`RunLayout`), so they are left out here.
    With `corpus`, the run reads the user's files instead of generating the world;
    the sections it leaves unset then default to what a corpus allows (see
    `_corpus_defaults`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("demo", pattern=PLAIN_NAME, description="Run name: runs/<name>/.")
    runs_root: str = Field("runs", description="Folder holding run directories.")
    until: Literal[RUN_STAGES] = Field(  # type: ignore[valid-type]
        "report", description="Last stage to run (the rest are listed as not run)."
    )
    corpus: CorpusSource | None = Field(
        None,
        description="The user's own input files; None: generate the demo world and split it.",
    )
    base_model: str | None = Field(
        None,
        description="Continue this model on the corpus instead of pre-training a preset from "
        "scratch: a model directory, a hub name, or a model asset (smollm2-135m-instruct, "
        "fetched on first use). Its tokenizer packs every variant (no tokenizer stage), its "
        "weights start every variant's pretrain, and evaluate also scores it untouched "
        "(eval/base.json); needs `corpus`. None: the run's own BPE and a fresh preset model.",
    )
    variants: list[Literal["vanilla", "mix", "instruct"]] | None = Field(
        None,
        description="Pre-training mixes to build, train and evaluate; None: vanilla, mix and "
        "instruct (mix left out for a corpus without general data).",
    )
    seeds: list[int] = Field(
        default_factory=list,
        description="Further pre-training seeds: each trains every variant again on the same "
        "tokens (seeds/<seed>/models/<variant>/) and evaluates it (seeds/<seed>/eval/), so the "
        "report can show mean ± sd over pretrain.seed and these; []: one seed.",
    )
    compare: list[str] = Field(
        default_factory=list,
        description="Run directories whose report summary is shown beside this run's, "
        "e.g. runs/demo.",
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
    evaluate: dict[str, Any] | None = Field(
        default_factory=lambda: dict(DEMO_EVALUATE),
        description="EvaluateConfig keys (default: the world knowledge probe); None: no "
        "evaluate stage (the default with a corpus).",
    )
    tune: dict[str, Any] | None = Field(
        default_factory=lambda: copy.deepcopy(DEMO_TUNE),
        description="SftConfig keys shared by the tuned vanilla, mix and instruct models "
        "(tuned/<variant>/, evaluated into eval/tuned/); None: no tune stage (the default "
        "with a corpus that has no tune data).",
    )
    magpie: dict[str, Any] | None = Field(
        default_factory=lambda: copy.deepcopy(DEMO_MAGPIE),
        description="MagpieConfig keys, run on the tuned instruct model (magpie/); "
        "None: no magpie stage.",
    )

    @model_validator(mode="before")
    @classmethod
    def _corpus_defaults(cls, data: Any) -> Any:
        """With a corpus, the sections that need the world default to what the corpus allows.

        Written into the resolved config (runs/<name>/config.yaml), so the run's
        config says what ran: the miner without `biography`, cooking in every template
        (not the probe's one format), no world probe, no tuning without tune data, no
        `mix` variant without general data.
        """
        if not isinstance(data, dict) or data.get("corpus") is None:
            return data
        corpus = data["corpus"]
        get = corpus.get if isinstance(corpus, dict) else lambda k: getattr(corpus, k, None)
        defaults: dict[str, Any] = {
            "variants": [v for v in PAPER_VARIANTS if v != "mix" or get("general")],
            "synthesize": copy.deepcopy(CORPUS_SYNTHESIZE),
            "cook": copy.deepcopy(CORPUS_COOK),
            "evaluate": None,
        }
        if not get("tune"):
            defaults["tune"] = None
        if data.get("base_model") is not None:  # its tokenizer and architecture, not ours
            defaults["tokenizer"] = {}
            defaults["pretrain"] = copy.deepcopy(BASE_MODEL_PRETRAIN)
        return {**defaults, **data}

    @field_validator("seeds")
    @classmethod
    def _seeds_once(cls, value: list[int]) -> list[int]:
        twice = sorted({s for s in value if value.count(s) > 1})
        if twice:
            raise ValueError(f"names seed {', '.join(map(str, twice))} more than once")
        return value

    @field_validator("compare")
    @classmethod
    def _compare_names_run_dirs(cls, value: list[str]) -> list[str]:
        if any(not entry.strip() for entry in value):
            raise ValueError("each entry is a run directory (e.g. runs/demo), not empty")
        twice = sorted({entry for entry in value if value.count(entry) > 1})
        if twice:
            raise ValueError(f"names {', '.join(twice)} more than once")
        return value

    @model_serializer(mode="wrap")
    def _without_unset_sources(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A demo config leaves `corpus`, `base_model`, `variants` and `compare` out, so
        # its resolved config.yaml (and anything hashed from it) stays byte-identical to
        # runs made before they existed.
        data = handler(self)
        for key in ("corpus", "base_model", "variants"):
            if data.get(key) is None:
                data.pop(key, None)
        for key in ("compare", "seeds"):
            if not data.get(key):
                data.pop(key, None)
        return data

    @model_validator(mode="after")
    def _base_model_fits(self) -> RunConfig:
        """Pretrain keys a run cannot honour fail here, naming the key: `lora` and `init_from`
        always, and with `base_model` the preset and tokenizer keys it makes meaningless.

        Checked before the sections are, so a preset key is reported as this, not as a
        PretrainConfig error about init_from the user never wrote."""
        if "lora" in self.pretrain:
            raise ValueError(
                "pretrain.lora: pre-training (continued too) updates every weight; LoRA is "
                "tune.lora's (instruction tuning), so remove pretrain.lora"
            )
        if "init_from" in self.pretrain:
            raise ValueError(
                "pretrain.init_from: a run sets it from base_model; write "
                "`base_model: <model dir | hub name | asset>` at the top level instead"
            )
        if self.base_model is None:
            return self
        if self.corpus is None:
            raise ValueError(
                "base_model needs a corpus: add `corpus: {input: [your files]}` to continue it "
                "on (the demo world's defaults pre-train a preset from scratch)"
            )
        if "model" in self.pretrain:
            given = self.pretrain["model"]
            keys = ", ".join(given) if isinstance(given, dict) else str(given)
            raise ValueError(
                f"pretrain.model ({keys}): base_model {self.base_model} brings its own "
                "architecture, and preset keys apply to training from scratch; remove "
                "pretrain.model"
            )
        if "tokenizer" in self.pretrain:
            raise ValueError(
                f"pretrain.tokenizer: base_model {self.base_model} brings its own tokenizer; "
                "remove pretrain.tokenizer"
            )
        if self.tokenizer:
            raise ValueError(
                "tokenizer: with base_model the run packs every variant with the base model's "
                "own tokenizer and trains none; remove the tokenizer section"
            )
        return self

    @model_validator(mode="after")
    def _sections_are_valid(self) -> RunConfig:
        # Validate each section now, with placeholder paths, so a typo fails before any work.
        base = {} if self.base_model is None else {"init_from": self.base_model}
        checks: list[tuple[str, type[BaseModel], dict[str, Any]]] = [
            ("ingest", IngestConfig, {"input": ["<world>"]}),
            ("synthesizer", TrainSynthesizerConfig, {"world_dir": "<world>"}),
            ("synthesize", SynthesizeConfig, {"model": "<synthesizer>"}),
            ("filter", FilterConfig, {}),
            ("cook", CookConfig, {}),
            ("tokenizer", TokenizerTrainConfig, {"input": ["<corpus>"]}),
            ("mix", MixConfig, {"recipe": "vanilla", "tokenizer": "<t>", "corpus": "<c>"}),
            ("tokenize", TokenizeConfig, {"tokenizer": "<t>"}),
            ("pretrain", PretrainConfig, {"tokens": "<t>", "tokenizer": "<t>", **base}),
            ("evaluate", EvaluateConfig, {"model": "<m>", "tasks": ["world_probe_mc"]}),
            ("tune", SftConfig, {"model": "<m>", "data": ["<tune>"]}),
            ("magpie", MagpieConfig, {"model": "<m>"}),
        ]
        for section, model, placeholders in checks:
            values = getattr(self, section)
            if values is None:  # an optional stage left out
                continue
            try:
                model.model_validate({**placeholders, **values})
            except ValidationError as err:
                raise ValueError(_format_errors(model, err, f"the {section} section")) from None
        lora = (self.tune or {}).get("lora") or {}
        if lora.get("r") and not lora.get("merge"):
            raise ValueError(
                "tune.lora needs merge: true in a run: the tuned models are evaluated "
                "(and asked by magpie) as whole models"
            )
        variants = self.run_variants
        if len(set(variants)) != len(variants) or not variants:
            raise ValueError(f"variants must name each mix once, at least one: {variants}")
        if self.magpie is not None and self.tune is not None and "instruct" not in variants:
            raise ValueError("magpie asks the tuned instruct model: add instruct to variants")
        if self.corpus is not None:
            self._corpus_is_enough(self.corpus, variants)
        if self.pretrain_seed in self.seeds:
            raise ValueError(
                f"seeds: {self.pretrain_seed} is pretrain.seed, which trains models/ already; "
                "list only further seeds"
            )
        own = os.path.normpath(os.path.join(self.runs_root, self.name))
        if any(os.path.normpath(entry) == own for entry in self.compare):
            raise ValueError(f"compare: {own} is this run itself; name other runs' directories")
        return self

    def _corpus_is_enough(self, corpus: CorpusSource, variants: tuple[str, ...]) -> None:
        """Stages a corpus run cannot do without the world fail here, before any work."""
        if "mix" in variants and not corpus.general:
            raise ValueError("the mix variant needs corpus.general (general instruction data)")
        if self.tune is not None and not corpus.tune:
            raise ValueError("tune needs corpus.tune (chat records); or set tune: null")
        tasks = (self.evaluate or {}).get("tasks", [])
        named = {t.strip() for item in ([tasks] if isinstance(tasks, str) else tasks)
                 for t in str(item).split(",")}  # fmt: skip
        if self.evaluate is not None and (named & WORLD_PROBE_TASKS or not tasks):
            raise ValueError(
                "the world knowledge probe needs the world: with a corpus, set evaluate.tasks "
                "to lm-eval tasks of your own (or evaluate: null)"
            )
        if not self.mining and not self.synthesize.get("model"):
            raise ValueError(
                "a corpus has no world to train the demo synthesizer on: set synthesize.model "
                "(e.g. instruction-pretrain/instruction-synthesizer) or synthesize.engine: miner"
            )

    @property
    def mining(self) -> bool:
        """Whether the pairs come from the model-free miner (no synthesizer is trained)."""
        return self.synthesize.get("engine") == "miner"

    @property
    def pretrain_seed(self) -> int:
        """The seed of models/<variant>/ (pretrain.seed, or its default)."""
        default = PretrainConfig.model_fields["seed"].default
        return int(self.pretrain.get("seed", default))

    @property
    def run_variants(self) -> tuple[str, ...]:
        return tuple(self.variants) if self.variants is not None else PAPER_VARIANTS

    def layout(self) -> RunLayout:
        """runs/<name>/ and the variants this run trains."""
        return RunLayout(Path(self.runs_root) / self.name, self.run_variants)

    def ingest_config(self, default_input: list[str]) -> IngestConfig:
        return IngestConfig.model_validate({"input": default_input, **self.ingest})
