"""Where everything of a run directory lives: one object, shared by run, the CLI and report.

    runs/<name>/
      config.yaml  summary.json        the resolved run config; what ran, what was skipped
      world/                           the seeded demo world (`instructpt world`)
      inputs/<role>.jsonl              the world's texts split by role (corpus, augment, ...)
      corpus/  corpus-augment/         ingested Document shards: all of them; those to augment
      models/synthesizer/              the demo synthesizer
      synth/  filtered/  cooked/       pairs; pairs kept by `filter`; cooked pre-training text
      tokenizer/                       the trained BPE
      mix/<variant>/  tokens/<variant>/  models/<variant>/
      eval/tasks/  eval/<variant>.json the probe's lm-eval tasks; each model's results
      eval/base.json                   the untouched `base_model` (a run that continues one)
      tuned/<variant>/  eval/tuned/<variant>.json
      magpie/  cache/  plan/  report/

A variant is one pre-training mix of the paper's comparison (Cheng et al. 2024,
Section 3): `vanilla` (raw text only), `mix` (raw + the synthesizer's general
instruction data) and `instruct` (a share of documents instruction-augmented).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: The paper's comparison, in the order every stage, table and plot goes through it.
PAPER_VARIANTS: tuple[str, ...] = ("vanilla", "mix", "instruct")
#: Replay caches of the engine-calling stages, under cache/.
SYNTH_CACHE = "synth-replay.sqlite"
RUN_MAGPIE_CACHE = "magpie.sqlite"  # `run`'s; `instructpt magpie` keeps its own, below
MAGPIE_CACHE = "magpie-replay.sqlite"
#: eval/<BASE_EVAL>.json: the `base_model` before continued pre-training, the "before" row
#: beside every variant (no variant is named so: variants are the paper's three).
BASE_EVAL = "base"


@dataclass(frozen=True)
class RunLayout:
    """Every path of one run directory, and the variants the run trains."""

    root: Path
    variants: tuple[str, ...] = PAPER_VARIANTS

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "variants", tuple(self.variants))

    def absolute(self) -> RunLayout:
        """The same layout with an absolute root (what Ray workers are given)."""
        return RunLayout(self.root.absolute(), self.variants)

    # ------------------------------------------------------------ run-level files
    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    # ------------------------------------------------------------ data stages
    @property
    def world(self) -> Path:
        return self.root / "world"

    @property
    def inputs(self) -> Path:
        return self.root / "inputs"

    def input(self, role: str) -> Path:
        """inputs/<role>.jsonl: the world's texts for one role (corpus, augment, mixpt, tune)."""
        return self.inputs / f"{role}.jsonl"

    @property
    def corpus(self) -> Path:
        return self.root / "corpus"

    @property
    def augment(self) -> Path:
        return self.root / "corpus-augment"

    @property
    def synthesizer(self) -> Path:
        return self.root / "models" / "synthesizer"

    @property
    def synth(self) -> Path:
        return self.root / "synth"

    @property
    def filtered(self) -> Path:
        return self.root / "filtered"

    @property
    def cooked(self) -> Path:
        return self.root / "cooked"

    @property
    def tokenizer(self) -> Path:
        return self.root / "tokenizer"

    @property
    def plan(self) -> Path:
        return self.root / "plan"

    # ------------------------------------------------------------ per variant
    @property
    def variant_parents(self) -> tuple[Path, ...]:
        """mix/, tokens/ and models/: the folders holding one subfolder per variant."""
        return (self.root / "mix", self.root / "tokens", self.root / "models")

    def mix(self, variant: str) -> Path:
        return self.root / "mix" / variant

    def tokens(self, variant: str) -> Path:
        return self.root / "tokens" / variant

    def models(self, variant: str) -> Path:
        """models/<variant>/: the pre-training stage folder (metrics, checkpoints, manifest)."""
        return self.root / "models" / variant

    def model(self, variant: str) -> Path:
        """models/<variant>/model: the final weights, loadable by transformers."""
        return self.models(variant) / "model"

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    @property
    def eval_tasks(self) -> Path:
        return self.eval_dir / "tasks"

    def eval(self, variant: str) -> Path:
        return self.eval_dir / f"{variant}.json"

    @property
    def base_eval(self) -> Path:
        """eval/base.json: the run's `base_model` evaluated as it was given, once."""
        return self.eval(BASE_EVAL)

    def seed_run(self, seed: int) -> RunLayout:
        """seeds/<seed>/: a further pre-training seed's models/ and eval/ (tokens stay here)."""
        return RunLayout(self.root / "seeds" / str(seed), self.variants)

    def tuned(self, variant: str) -> Path:
        return self.root / "tuned" / variant

    def tuned_model(self, variant: str) -> Path:
        return self.tuned(variant) / "model"

    def tuned_eval(self, variant: str) -> Path:
        return self.eval_dir / "tuned" / f"{variant}.json"

    # ------------------------------------------------------------ the rest
    @property
    def magpie(self) -> Path:
        return self.root / "magpie"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def report(self) -> Path:
        return self.root / "report"
