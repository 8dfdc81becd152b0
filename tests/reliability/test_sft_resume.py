"""`instructpt sft` killed with SIGKILL mid-run, then rerun: it resumes, and the result is exact.

One real CLI subprocess trains a tiny chat model (tests/train/test_sft.py's
builder) on 300 Alpaca and chat records for 40 steps, checkpointing every 5;
it is frozen with SIGSTOP once a checkpoint exists and a loss row was logged
after it (so the rerun must drop that row and log it again), then SIGKILLed:
nothing is flushed or cleaned up. What must hold:
- rerunning the same command resumes from the newest checkpoint, and every
  output (model/, checkpoints' tensors, metrics.jsonl up to timings, the
  manifest up to timings) is byte-identical to an uninterrupted run of the
  same command in another folder: the loop on CPU in fp32 is bitwise
  deterministic across a resume, including the data order past the end of
  the first epoch (37 micro-batches of 4 of the 150 packed sequences);
- metrics.jsonl holds each logged step once;
- a rerun with another lr is refused, naming the key, and leaves the killed
  folder untouched; with --overwrite it starts over from step 0;
- a `model.tmp-<pid>` folder left by a kill during the final save is removed
  by the rerun.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from instructpt.train.checkpoint import latest_checkpoint
from tests.train.test_sft import COUNTRIES, build_chat_model, write_jsonl

NAME = "tuned"
NUM_STEPS = 40
CHECKPOINT_EVERY = 5
LOG_EVERY = 3  # not a divisor of CHECKPOINT_EVERY: checkpoints hold an open loss window
# what may differ between a resumed and an uninterrupted run: timings, and the resume point
RUN_SPECIFIC = {"tokens_per_s", "elapsed_s", "seconds", "resumed_from_step"}
# no HF_HUB_OFFLINE here: it is saved into tokenizer_config.json, and the in-process
# reruns below must write what the subprocesses write
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@dataclass
class Inputs:
    model: Path
    data: Path

    def args(self, run_dir: Path, *extra: str) -> list[str]:
        return [
            "sft", str(self.data), "--model", str(self.model), "--run-dir", str(run_dir),
            "--name", NAME, "--num-steps", str(NUM_STEPS),
            "--checkpoint-every", str(CHECKPOINT_EVERY), "--log-every", str(LOG_EVERY),
            "--micro-batch-size", "4", "--seq-len", "128", "--lr", "3e-3",
            "--num-threads", "1", "--device", "cpu", "--no-progress", *extra,
        ]  # fmt: skip

    def command(self, run_dir: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "instructpt", *self.args(run_dir, *extra)]


def instruction_records(n: int) -> list[dict]:
    """n short records, Alpaca and chat alternating, and one bad record in the middle."""
    rows: list[dict] = []
    for i in range(n):
        country, city = COUNTRIES[i % len(COUNTRIES)]
        if i % 2:
            rows.append({"instruction": f"What is the capital of {country}? ({i})", "output": city})
        else:
            rows.append(
                {
                    "messages": [
                        {"role": "user", "content": f"Name the capital of {country}, case {i}."},
                        {"role": "assistant", "content": f"The capital of {country} is {city}."},
                    ]
                }
            )
    rows.insert(n // 2, {"instruction": "no output"})
    return rows


def run_sft(inputs: Inputs, run_dir: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        inputs.command(run_dir), env=ENV, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def metric_steps(out: Path) -> list[int]:
    lines = (out / "metrics.jsonl").read_bytes().splitlines(keepends=True)
    return [orjson.loads(x)["step"] for x in lines if x.endswith(b"\n")]  # whole rows only


def logged_past_checkpoint(out: Path) -> bool:
    newest = latest_checkpoint(out / "checkpoints")
    if newest is None or not (out / "metrics.jsonl").is_file():
        return False
    return max(metric_steps(out), default=0) > int(newest.name.removeprefix("step-"))


def kill_9_mid_run(inputs: Inputs, run_dir: Path, log: Path, timeout: float = 180) -> None:
    """SIGKILL a run once a row is logged past its newest checkpoint (stderr to `log`).

    The process is frozen (SIGSTOP) while the folder is checked, so the state
    checked is the state killed; SIGKILL ends a stopped process all the same.
    """
    out = run_dir / "models" / NAME
    with log.open("wb") as stderr:  # not a pipe: one nobody reads can fill and block the run
        proc = subprocess.Popen(
            inputs.command(run_dir), env=ENV, stdout=subprocess.DEVNULL, stderr=stderr
        )
    deadline = time.monotonic() + timeout
    try:
        while True:
            assert proc.poll() is None, f"ended before the kill:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no checkpoint in time"
            if logged_past_checkpoint(out):
                os.kill(proc.pid, signal.SIGSTOP)
                if logged_past_checkpoint(out):
                    break
                os.kill(proc.pid, signal.SIGCONT)  # a checkpoint landed in between
            time.sleep(0.005)
    finally:
        if proc.poll() is None:  # running, or stopped at the kill point
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def untimed_rows(out: Path) -> list[dict]:
    rows = [orjson.loads(x) for x in (out / "metrics.jsonl").read_bytes().splitlines()]
    return [{k: v for k, v in r.items() if k not in RUN_SPECIFIC} for r in rows]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Inputs:
    root = tmp_path_factory.mktemp("sft-resume-inputs")
    model = build_chat_model(root / "model", "chatml")
    return Inputs(model, write_jsonl(root / "instructions.jsonl", instruction_records(300)))


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory) -> Path:
    """The uninterrupted run's output folder."""
    run_dir = tmp_path_factory.mktemp("sft-uninterrupted")
    run_sft(inputs, run_dir)
    return run_dir / "models" / NAME


@pytest.fixture(scope="module")
def killed(inputs, tmp_path_factory) -> Path:
    """A run directory whose sft was SIGKILLed mid-run (copy it before rerunning)."""
    root = tmp_path_factory.mktemp("sft-killed")
    run_dir = root / "run"
    kill_9_mid_run(inputs, run_dir, root / "stderr.txt")
    out = run_dir / "models" / NAME
    assert not (out / "_manifest.json").exists() and not (out / "model").exists()
    assert (out / "_work" / "state.json").is_file()
    return run_dir


@pytest.mark.slow
@pytest.mark.ci
@pytest.mark.timeout(400)
def test_kill_9_then_the_same_command_resumes_to_the_uninterrupted_bytes(
    inputs, reference, killed, tmp_path
):
    run_dir = shutil.copytree(killed, tmp_path / "run")
    out = run_dir / "models" / NAME
    resume_step = int(latest_checkpoint(out / "checkpoints").name.removeprefix("step-"))
    assert 0 < resume_step < NUM_STEPS
    assert max(metric_steps(out)) > resume_step  # rows the rerun must drop and log again

    proc = run_sft(inputs, run_dir)
    assert f"{NUM_STEPS} steps" in proc.stdout
    assert f"resumed at step {resume_step} and tuned" in proc.stdout
    manifest = orjson.loads((out / "_manifest.json").read_bytes())
    want = orjson.loads((reference / "_manifest.json").read_bytes())
    assert manifest["stats"]["resumed_from_step"] == resume_step
    assert want["stats"]["resumed_from_step"] is None

    # each logged step once, in order, with the uninterrupted run's exact values
    logged = [*range(LOG_EVERY, NUM_STEPS + 1, LOG_EVERY), NUM_STEPS]
    assert metric_steps(out) == metric_steps(reference) == sorted(set(logged))
    assert untimed_rows(out) == untimed_rows(reference)

    # the model, tokenizer and config: byte-identical (bitwise-deterministic resume)
    assert files(out / "model") == files(reference / "model")
    for name in ("config.yaml", "rejected.jsonl"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name

    # the manifest: the same shards (sha256) and every stat, exactly but for timings
    untimed = {k: v for k, v in manifest.items() if k != "stats"}
    assert untimed == {k: v for k, v in want.items() if k != "stats"}
    assert manifest["stats"].keys() == want["stats"].keys()
    for key, value in want["stats"].items():
        if key not in RUN_SPECIFIC:
            assert manifest["stats"][key] == value, key
    assert manifest["stats"]["steps"] == NUM_STEPS
    assert manifest["stats"]["packs"] // 4 < NUM_STEPS  # the run goes into a second epoch
    assert manifest["stats"]["records"] == 301 and manifest["stats"]["dropped"] == {"bad_field": 1}

    # the same checkpoints are kept; their tensors equal (trainer_state.json holds timings)
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == sorted(p.name for p in (reference / "checkpoints").iterdir())
    for name in ckpts:
        for part in ("model.safetensors", "optimizer.safetensors", "rng.safetensors"):
            got = (out / "checkpoints" / name / part).read_bytes()
            assert got == (reference / "checkpoints" / name / part).read_bytes(), (name, part)
    assert not (out / "_work").exists()
    assert not [p for p in run_dir.rglob("*") if ".tmp-" in p.name]


@pytest.mark.slow
@pytest.mark.ci
@pytest.mark.timeout(400)
def test_a_model_folder_half_saved_by_a_killed_run_is_removed_on_rerun(
    inputs, reference, killed, tmp_path
):
    """A kill while the final model is written leaves `model.tmp-<pid>` (a window of
    ~10 ms on this model, too short to hit reliably, so it is planted here)."""
    from instructpt.cli import main

    run_dir = shutil.copytree(killed, tmp_path / "run")
    out = run_dir / "models" / NAME
    stale = out / "model.tmp-4242"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half a model")

    rerun = CliRunner().invoke(main, inputs.args(run_dir))  # the same command, in-process
    assert rerun.exit_code == 0, rerun.output
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in reference.iterdir())
    assert files(out / "model") == files(reference / "model")


@pytest.mark.slow
@pytest.mark.ci
@pytest.mark.timeout(400)
def test_a_killed_run_is_not_resumed_with_another_lr_unless_overwritten(inputs, killed, tmp_path):
    from instructpt.cli import main

    run_dir = shutil.copytree(killed, tmp_path / "run")
    out = run_dir / "models" / NAME
    before = files(run_dir)

    refused = CliRunner().invoke(main, inputs.args(run_dir, "--lr", "1e-3"))
    assert refused.exit_code == 2, refused.output
    assert "was started with a different config (lr: 0.003 -> 0.001)" in refused.output
    assert "--overwrite" in refused.output
    assert files(run_dir) == before  # nothing mixed in, nothing removed

    fresh = CliRunner().invoke(main, inputs.args(run_dir, "--lr", "1e-3", "--overwrite"))
    assert fresh.exit_code == 0, fresh.output
    stats = orjson.loads((out / "_manifest.json").read_bytes())["stats"]
    assert stats["resumed_from_step"] is None and stats["steps"] == NUM_STEPS
    rows = [orjson.loads(x) for x in (out / "metrics.jsonl").read_bytes().splitlines()]
    assert rows[0]["step"] == LOG_EVERY  # the killed run's rows are gone
    assert len({r["step"] for r in rows}) == len(rows)
    assert rows[0]["lr"] <= 1e-3
    assert "lr: 0.001" in (out / "config.yaml").read_text()
