"""benchmarks/gpu.py runs on CPU with --tiny and writes the JSON shape its docstring documents.

Why: the script is meant for a GPU lent for minutes; a broken key or a crash found only
there wastes the loan. On CPU, MFU and peak memory are null with a reason and the
compile runners are skipped, but every row and key is there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN_KEYS = {
    "preset", "params", "flops_per_token", "runner", "compile", "fused_loss", "loss_path",
    "tokens_per_s", "s_per_step", "mfu", "mfu_reason", "peak_mem_gib", "final_loss", "vs_hf",
    "error", "skipped",
}  # fmt: skip
RUNNERS = ["ours", "ours-plain-ce", "ours-compile", "ours-compile-plain-ce", "hf"]


def test_tiny_run_on_cpu_writes_the_documented_json(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--tiny", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        "| preset | params | runner |" in done.stdout and "hf engine / bare generate" in done.stdout
    )
    r = json.loads(out.read_text())
    assert set(r) == {"schema", "tiny", "date", "seconds", "device", "versions", "train", "synth"}
    assert r["schema"] == 1 and r["tiny"] is True and isinstance(r["seconds"], float)
    assert r["device"] == {"name": r["device"]["name"], "cuda": False, "peak_bf16_flops": None}
    assert set(r["versions"]) == {"torch", "transformers", "python"}
    assert set(r["train"]["settings"]) == {
        "batch", "seq_len", "vocab", "warmup", "steps", "precision", "budget_s",
    }  # fmt: skip
    rows = r["train"]["rows"]
    assert [x["runner"] for x in rows] == RUNNERS * 2  # two tiny presets
    for row in rows:
        assert set(row) == TRAIN_KEYS, row
        assert row["error"] is None, row
        assert row["mfu"] is None and "GPU" in row["mfu_reason"]
        assert row["peak_mem_gib"] is None
        if row["compile"]:
            assert row["skipped"] and row["tokens_per_s"] is None
        else:
            assert row["skipped"] is None
            assert row["tokens_per_s"] > 0 and isinstance(row["final_loss"], float)
            assert row["vs_hf"] > 0
    paths = {x["runner"]: x["loss_path"] for x in rows[:5]}
    assert paths == {
        "ours": "chunked-ce", "ours-plain-ce": "model", "ours-compile": None,
        "ours-compile-plain-ce": None, "hf": "model",
    }  # fmt: skip
    ours, plain = rows[0], rows[1]
    assert abs(ours["final_loss"] - plain["final_loss"]) < 1e-4  # the same loss either way

    synth = r["synth"]
    assert set(synth) == {"settings", "rows", "ratio"}
    assert set(synth["settings"]) == {
        "preset", "vocab", "prompts", "prompt_len", "max_new_tokens", "batch_size", "dtype",
        "repeats",
    }  # fmt: skip
    assert [x["runner"] for x in synth["rows"]] == ["hf-engine", "bare-generate"]
    for row in synth["rows"]:
        assert set(row) == {"runner", "new_tokens", "seconds", "new_tokens_per_s", "error"}
        assert row["error"] is None and row["new_tokens"] > 0 and row["new_tokens_per_s"] > 0
    # greedy on the same model and prompts: the engine generates what generate does
    assert synth["rows"][0]["new_tokens"] == synth["rows"][1]["new_tokens"]
    assert isinstance(synth["ratio"], float) and synth["ratio"] > 0
