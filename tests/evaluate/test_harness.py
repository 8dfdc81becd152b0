"""lm-eval through its Python API: config, input checks, results file, and the CLI agreeing."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from instructpt.core.lm_eval_tasks import OFFLINE_ENV, offline_mode
from instructpt.errors import InputError
from instructpt.evaluate import (
    GEN_FEWSHOT_TASK,
    GEN_TASK,
    MC_TASK,
    PROBE_TAG,
    EvaluateConfig,
    evaluate,
    harness,
    plan_runs,
    write_probe_tasks,
)
from instructpt.evaluate.harness import logits_memory_warning, resolve_model, task_results
from instructpt.synth.tiny import build_tiny_model
from instructpt.world import build_world, write_world
from tests.evaluate.test_probe import SMALL

PAPER_ZERO_SHOT = ["piqa", "hellaswag", "winogrande"]
PAPER_FIVE_SHOT = ["social_iqa", "arc_easy", "arc_challenge", "openbookqa", "boolq", "mmlu"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread; two threads on a busy 2-core box run 50x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> tuple[Path, Path]:
    """(task folder, model folder): the probe of a small world and a random tiny Llama."""
    root = tmp_path_factory.mktemp("eval")
    world = build_world(SMALL)
    write_world(world, root / "world")
    write_probe_tasks(root / "world", root / "tasks")
    model = build_tiny_model(root / "model", [t.text for t in world.texts], vocab_size=512)
    return root / "tasks", model


def config(probe: tuple[Path, Path], **overrides) -> EvaluateConfig:
    tasks, model = probe
    values = {"model": str(model), "tasks": [MC_TASK], "include_path": [str(tasks)]}
    return EvaluateConfig(**{**values, **overrides})


# ------------------------------------------------------------------ config


def test_paper_preset_runs_zero_shot_then_five_shot_tasks() -> None:
    assert plan_runs(["paper"], None) == [(0, PAPER_ZERO_SHOT), (5, PAPER_FIVE_SHOT)]


def test_named_tasks_join_the_preset_and_keep_their_own_shots() -> None:
    assert plan_runs(["paper", MC_TASK, "arc_easy"], None) == [
        (0, PAPER_ZERO_SHOT),
        (5, PAPER_FIVE_SHOT),
        (None, [MC_TASK, "arc_easy"]),
    ]
    assert plan_runs([MC_TASK, GEN_TASK, MC_TASK], 3) == [(3, [MC_TASK, GEN_TASK])]


def test_config_defaults_follow_the_paper_protocol_on_a_cpu() -> None:
    cfg = EvaluateConfig(model="m", tasks="paper")
    assert cfg.tasks == ["paper"]
    assert cfg.add_bos_token is True
    assert cfg.device == "cpu"
    assert cfg.num_fewshot is None
    assert cfg.offline is False and cfg.trust_remote_code is False


def test_comma_separated_tasks_are_split_as_lm_eval_does() -> None:
    cfg = EvaluateConfig(model="m", tasks=[f"{MC_TASK}, {GEN_TASK}", "boolq"])
    assert cfg.tasks == [MC_TASK, GEN_TASK, "boolq"]


def test_num_fewshot_with_a_preset_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match=r"num_fewshot must be unset.*paper"):
        EvaluateConfig(model="m", tasks=["paper"], num_fewshot=3)


def test_unknown_config_keys_are_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        EvaluateConfig(model="m", tasks=["boolq"], fewshot=3)


def test_offline_flag_does_not_change_the_config_hash() -> None:
    a = EvaluateConfig(model="m", tasks=["boolq"])
    assert a.config_hash() == EvaluateConfig(model="m", tasks=["boolq"], offline=True).config_hash()
    assert a.config_hash() != EvaluateConfig(model="m", tasks=["boolq"], seed=1).config_hash()


# ------------------------------------------------------------------ inputs


def test_missing_model_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="model directory not found"):
        resolve_model(str(tmp_path / "runs" / "demo" / "models" / "vanilla"))


def test_folder_without_config_json_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no config\.json"):
        resolve_model(str(tmp_path))


def test_hub_names_pass_through_untouched() -> None:
    assert resolve_model("EleutherAI/pythia-160m") == ("EleutherAI/pythia-160m", False)


def test_missing_include_path_is_an_input_error(probe, tmp_path: Path) -> None:
    cfg = config(probe, include_path=[str(tmp_path / "nope")])
    with pytest.raises(InputError, match=r"include_path .*nope is not a folder"):
        evaluate(cfg, tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()


def test_unknown_task_name_is_an_input_error_with_a_suggestion(probe, tmp_path: Path) -> None:
    # Also exercises the fallback to lm-eval's full task index (~12 s on 2 cores).
    cfg = config(probe, tasks=["world_probe_mcq"])
    with pytest.raises(
        InputError,
        match=r"(?s)unknown lm-eval task.*world_probe_mcq \(did you mean world_probe_mc,",
    ):
        evaluate(cfg, tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()


def test_task_folder_whose_data_files_are_gone_is_an_input_error(probe, tmp_path: Path) -> None:
    tasks, _ = probe
    moved = tmp_path / "tasks"
    write_probe_tasks(tasks.parent / "world", moved)
    (moved / f"{MC_TASK}.test.jsonl").unlink()
    cfg = config(probe, tasks=[PROBE_TAG], include_path=[str(moved)])
    with pytest.raises(InputError, match=rf"(?s)do not exist.*{MC_TASK}\.test\.jsonl"):
        evaluate(cfg, tmp_path / "out.json")


# ------------------------------------------------------------------ results


def test_task_results_key_metrics_by_name_or_by_filter_when_several() -> None:
    output = {
        "results": {
            "t": {"alias": "t", "acc,none": 0.5, "acc_stderr,none": 0.1, "sample_len": 10},
            "g": {
                "alias": "g",
                "exact_match,strict": 0.2,
                "exact_match_stderr,strict": "N/A",
                "exact_match,flex": 0.3,
                "exact_match_stderr,flex": 0.05,
            },
        },
        "groups": {"g": {}},
        "n-shot": {"t": 0, "g": 5},
        "n-samples": {"t": {"original": 40, "effective": 10}},
        "versions": {"t": 1.0, "g": 2.0},
        "higher_is_better": {"t": {"acc": True}},
    }
    out = task_results(output)
    assert out["t"]["metrics"] == {"acc": 0.5}
    assert out["t"]["stderr"] == {"acc": 0.1}
    assert (out["t"]["num_fewshot"], out["t"]["num_samples"], out["t"]["num_items"]) == (0, 10, 40)
    assert out["t"]["is_group"] is False and out["g"]["is_group"] is True
    assert out["g"]["metrics"] == {"exact_match,strict": 0.2, "exact_match,flex": 0.3}
    assert out["g"]["stderr"] == {"exact_match,strict": None, "exact_match,flex": 0.05}
    assert out["g"]["filters"] == ["flex", "strict"]


def test_offline_mode_sets_and_then_restores_the_hub_switches(monkeypatch) -> None:
    import datasets.config
    import huggingface_hub.constants

    for key in OFFLINE_ENV:
        monkeypatch.delenv(key, raising=False)
    before = (huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE)
    with offline_mode(True):
        assert all(os.environ[key] == "1" for key in OFFLINE_ENV)
        assert huggingface_hub.constants.HF_HUB_OFFLINE is True
        assert datasets.config.HF_HUB_OFFLINE is True
    assert not any(key in os.environ for key in OFFLINE_ENV)
    assert before == (huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE)
    with offline_mode(False):
        assert not any(key in os.environ for key in OFFLINE_ENV)


def test_evaluate_writes_metrics_stderr_shots_and_versions(probe, tmp_path, monkeypatch) -> None:
    for key in OFFLINE_ENV:
        monkeypatch.delenv(key, raising=False)
    cfg = config(probe, tasks=[PROBE_TAG], num_fewshot=1, limit=6, offline=True)
    out_path = tmp_path / "eval" / "instruct.json"
    result = evaluate(cfg, out_path)

    assert json.loads(out_path.read_text("utf-8")) == result
    assert set(result["results"]) == {MC_TASK, GEN_TASK, GEN_FEWSHOT_TASK}
    mc, gen = result["results"][MC_TASK], result["results"][GEN_TASK]
    assert set(mc["metrics"]) == {"acc", "acc_norm"} == set(mc["stderr"])
    assert set(gen["metrics"]) == {"exact_match"} and gen["filters"] == ["first_line"]
    assert mc["version"] == 1.0 and gen["version"] == 2.0
    for task in (mc, gen):
        assert task["num_fewshot"] == 1 and task["num_samples"] == 6
        for name, value in task["metrics"].items():
            assert 0.0 <= value <= 1.0
            assert task["stderr"][name] is not None and task["stderr"][name] >= 0
        # per attribute, from lm-eval's per-item scores: the item-weighted mean is the total
        by_attribute = task["by_attribute"]
        assert sum(a["num_samples"] for a in by_attribute.values()) == 6
        for name, value in task["metrics"].items():
            weighted = sum(a["metrics"][name] * a["num_samples"] for a in by_attribute.values())
            assert weighted / 6 == pytest.approx(value)
    # six items: accuracy is a count of sixths (a random model, so no value is asserted)
    assert round(mc["metrics"]["acc"] * 6, 6).is_integer()
    # the generative task keeps each reply, so a report can show which answers flipped
    assert "answers" not in mc
    rows = gen["answers"]
    assert [r["doc_id"] for r in rows] == list(range(6))
    assert all(isinstance(r["reply"], str) and r["question"] for r in rows)
    assert sum(r["score"] for r in rows) / 6 == pytest.approx(gen["metrics"]["exact_match"])

    assert result["lm_eval_version"] == importlib.metadata.version("lm-eval")
    assert result["versions"]["transformers"] == importlib.metadata.version("transformers")
    assert result["model_path"] == str(probe[1].resolve())
    assert result["bos_added"] is True
    assert EvaluateConfig.model_validate(result["config"]) == cfg
    assert result["model_args"] == {
        "pretrained": str(probe[1].resolve()),
        "add_bos_token": True,
        "dtype": "auto",
        "trust_remote_code": False,
    }
    (run,) = result["runs"]
    assert run["num_fewshot"] == 1 and run["tasks"] == [PROBE_TAG]
    assert run["lm_eval"]["results"][MC_TASK]["acc,none"] == mc["metrics"]["acc"]
    # offline was for this evaluation only
    assert not any(key in os.environ for key in OFFLINE_ENV)


def test_evaluation_is_skipped_when_config_and_inputs_match_and_rerun_when_either_changes(
    probe, tmp_path
) -> None:
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    tasks, model = probe
    model = Path(shutil.copytree(model, tmp_path / "model"))
    world = tasks.parent / "world"
    tasks = tmp_path / "tasks"
    write_probe_tasks(world, tasks)
    out = tmp_path / "eval.json"

    def evaluated(**overrides) -> bool:
        """Whether lm-eval really ran: a skipped evaluation returns the marked file as it is."""
        result = evaluate(config((tasks, model), **{"limit": 2, **overrides}), out)
        out.write_text(json.dumps({**result, "marker": True}), "utf-8")
        return "marker" not in result

    assert evaluated()
    assert not evaluated()
    write_probe_tasks(world, tasks)  # same bytes, new modification times
    assert not evaluated(offline=True)  # a runtime switch, not part of the config hash
    assert evaluated(limit=3)  # config changed
    assert not evaluated(limit=3)
    weights = load_file(model / "model.safetensors")
    name = next(iter(weights))
    weights[name] = weights[name] + torch.ones_like(weights[name])
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})
    assert evaluated(limit=3)  # model changed, same config
    result = evaluate(config((tasks, model), limit=3), out, overwrite=True)
    assert "marker" not in result  # overwrite always runs


# ------------------------------------------------------------------ lm-eval's own CLI


@pytest.mark.slow
@pytest.mark.ci
def test_lm_eval_cli_reproduces_evaluate(probe, tmp_path: Path) -> None:
    tasks, model = probe
    names = f"{MC_TASK},{GEN_TASK}"
    ours = evaluate(config(probe, tasks=[names], num_fewshot=2), tmp_path / "ours.json")

    lm_eval = Path(sys.executable).parent / "lm_eval"
    # one thread, as in this process (see one_torch_thread)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [
        str(lm_eval),
        "--model", "hf",
        "--model_args", f"pretrained={model},add_bos_token=True",
        "--include_path", str(tasks),
        "--tasks", names,
        "--num_fewshot", "2",
        "--device", "cpu",
        "--batch_size", "8",
        "--output_path", str(tmp_path / "cli"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (results_file,) = (tmp_path / "cli").rglob("results_*.json")
    theirs = task_results(json.loads(results_file.read_text("utf-8")))

    for task in (MC_TASK, GEN_TASK):
        assert theirs[task]["num_samples"] == ours["results"][task]["num_samples"] > 20
        assert theirs[task]["num_fewshot"] == ours["results"][task]["num_fewshot"] == 2
        assert theirs[task]["metrics"].keys() == ours["results"][task]["metrics"].keys()
        for name, value in ours["results"][task]["metrics"].items():
            assert theirs[task]["metrics"][name] == pytest.approx(value, abs=1e-6)
            assert theirs[task]["stderr"][name] == pytest.approx(
                ours["results"][task]["stderr"][name], abs=1e-6
            )


def test_apply_chat_template_renders_prompts_through_the_models_template(probe, tmp_path) -> None:
    """An instruction-tuned model is scored on its own chat format (lm-eval's flag)."""
    import shutil

    from instructpt.train.sft_data import PLAIN_CHAT_TEMPLATE

    tasks, model = probe
    chat_model = shutil.copytree(model, tmp_path / "chat-model")
    (chat_model / "chat_template.jinja").write_text(PLAIN_CHAT_TEMPLATE, "utf-8")
    cfg = config((tasks, chat_model), limit=4, apply_chat_template=True)
    result = evaluate(cfg, tmp_path / "chat.json")
    assert result["chat_template"] == PLAIN_CHAT_TEMPLATE
    assert result["results"][MC_TASK]["num_samples"] == 4
    plain = evaluate(config((tasks, chat_model), limit=4), tmp_path / "plain.json")
    assert plain["chat_template"] is None


def test_logits_memory_warning_names_a_batch_size_that_fits() -> None:
    gib = 2**30
    # SmolLM2 (49k vocabulary) at batch 16 fits in 23 GiB; Gemma's 262k does not
    assert logits_memory_warning(16, 2048, 49_152, 23 * gib) is None
    warning = logits_memory_warning(16, 2048, 262_144, 23 * gib)
    assert warning is not None
    assert "64 GiB of logits" in warning and "--batch-size 5 or less" in warning
    # never below one; unknown free memory: no guess
    assert "--batch-size 1 or less" in (logits_memory_warning(2, 2048, 262_144, gib) or "")
    assert logits_memory_warning(16, 2048, 262_144, None) is None


def test_evaluate_warns_before_a_batch_whose_logits_cannot_fit(
    probe, tmp_path, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(harness, "available_memory_bytes", lambda device: 2**20)
    cfg = config(probe, tasks=[MC_TASK], limit=2, offline=True)
    with caplog.at_level("WARNING", logger="instructpt.evaluate.harness"):
        evaluate(cfg, tmp_path / "eval.json")
    assert any("may run out of memory" in r.getMessage() for r in caplog.records)
