"""`RunLayout` names every folder of a run directory once, exactly where runs have put them."""

from __future__ import annotations

from pathlib import Path

from instructpt.core.layout import PAPER_VARIANTS, RunLayout
from instructpt.run_config import RunConfig


def test_every_path_is_the_one_runs_have_always_used():
    run = RunLayout(Path("runs/demo"))
    expected = {
        run.config: "config.yaml",
        run.summary: "summary.json",
        run.world: "world",
        run.input("mixpt"): "inputs/mixpt.jsonl",
        run.corpus: "corpus",
        run.augment: "corpus-augment",
        run.synthesizer: "models/synthesizer",
        run.synth: "synth",
        run.filtered: "filtered",
        run.cooked: "cooked",
        run.tokenizer: "tokenizer",
        run.mix("mix"): "mix/mix",
        run.tokens("vanilla"): "tokens/vanilla",
        run.models("instruct"): "models/instruct",
        run.model("instruct"): "models/instruct/model",
        run.eval_tasks: "eval/tasks",
        run.eval("vanilla"): "eval/vanilla.json",
        run.tuned_model("mix"): "tuned/mix/model",
        run.tuned_eval("mix"): "eval/tuned/mix.json",
        run.magpie: "magpie",
        run.cache: "cache",
        run.plan: "plan",
        run.report: "report",
    }
    for path, rel in expected.items():
        assert path == Path("runs/demo") / rel


def test_the_run_config_gives_its_folder_and_variants():
    assert RunConfig().layout() == RunLayout(Path("runs/demo"), PAPER_VARIANTS)
    assert PAPER_VARIANTS == ("vanilla", "mix", "instruct")
    cfg = RunConfig.model_validate({"name": "x", "runs_root": "r", "variants": ["instruct"]})
    layout = cfg.layout()
    assert layout.root == Path("r/x") and layout.variants == ("instruct",)
    assert layout.absolute().root.is_absolute() and layout.absolute().variants == ("instruct",)
