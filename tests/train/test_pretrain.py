"""Pre-training and continual pre-training on real token shards from the demo world."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import torch

from instructpt.errors import InputError, ResumeError
from instructpt.train.config import PretrainConfig
from instructpt.train.pretrain import pretrain, read_metrics
from instructpt.train.stage import plan_steps

TINY = {"preset": "tiny-llama"}


def _cfg(world_tokens: dict[str, Path], **kw) -> PretrainConfig:
    base = {
        "tokens": str(world_tokens["tokens"]),
        "tokenizer": str(world_tokens["tokenizer"]),
        "model": TINY,
        "micro_batch_size": 8,
        "lr": 3e-3,
        "log_every": 5,
        "checkpoint_every": 0,
        "progress": False,
        "num_threads": 1,
    }
    return PretrainConfig.model_validate({**base, **kw})


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(model_dir / "model.safetensors")


def test_loss_falls_and_the_model_loads_and_generates(world_tokens, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result = pretrain(_cfg(world_tokens, epochs=2), tmp_path / "out")
    st = result.manifest.stats
    assert st["steps"] == plan_steps(_cfg(world_tokens, epochs=2), 489, 1, seq_len=64) == 122
    assert st["last_loss"] < st["first_loss"] - 2.0, st  # from ~6.2 (ln 512) to ~3
    rows = read_metrics(tmp_path / "out")
    assert [r["step"] for r in rows][-1] == 122
    assert {"loss", "lr", "grad_norm", "tokens", "tokens_per_s", "elapsed_s"} <= set(rows[0])
    assert rows[-1]["tokens"] == 122 * 8 * 64

    model_dir = result.model_dir
    assert (model_dir / "model.safetensors").is_file()
    assert not list(model_dir.glob("*.bin")) and not list(model_dir.glob("*.pt"))
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert type(model).__name__ == "LlamaForCausalLM"
    ids = tok("Alder was born in", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=8, min_new_tokens=8, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 8
    # the run is reused, not retrained, on a rerun with the same config
    again = pretrain(_cfg(world_tokens, epochs=2), tmp_path / "out")
    assert again.reused and again.manifest.stats == st


def test_same_config_gives_the_same_weights(world_tokens, tmp_path):
    a = pretrain(_cfg(world_tokens, num_steps=6), tmp_path / "a").model_dir
    b = pretrain(_cfg(world_tokens, num_steps=6), tmp_path / "b").model_dir
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()


def _pretrain_cmd(world_tokens: dict[str, Path], run_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "instructpt", "pretrain",
        "--run-dir", str(run_dir), "--name", "m",
        "--tokens", str(world_tokens["tokens"]), "--tokenizer", str(world_tokens["tokenizer"]),
        "--model-preset", "tiny-llama", "--micro-batch-size", "4", "--epochs", "3",
        "--lr", "3e-3", "--log-every", "3", "--checkpoint-every", "7", "--num-threads", "1",
    ]  # fmt: skip


def test_kill_9_then_resume_reproduces_the_uninterrupted_run(world_tokens, tmp_path):
    """A real SIGKILL mid-run (after a checkpoint, between two), then a rerun."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = subprocess.run(
        _pretrain_cmd(world_tokens, tmp_path / "full"), env=env, capture_output=True, text=True
    )
    assert full.returncode == 0, full.stderr[-2000:]

    killed_dir = tmp_path / "killed"
    proc = subprocess.Popen(
        _pretrain_cmd(world_tokens, killed_dir), env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    ckpts = killed_dir / "models" / "m" / "checkpoints"
    deadline = time.monotonic() + 120
    while not (ckpts / "step-00000021").is_dir():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    out = killed_dir / "models" / "m"
    assert not (out / "_manifest.json").exists(), "killed after it finished: no resume tested"
    steps_before = [r["step"] for r in read_metrics(out)]
    # as if killed while renaming its final model into place: the rerun removes it
    (out / "model.tmp-4242").mkdir()
    (out / "model.tmp-4242" / "model.safetensors").write_bytes(b"half")
    resumed = subprocess.run(
        _pretrain_cmd(world_tokens, killed_dir), env=env, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    manifest = orjson.loads((out / "_manifest.json").read_bytes())
    assert manifest["stats"]["resumed_from_step"] >= 21
    assert not list(out.glob("model.tmp-*"))
    assert max(steps_before) >= 21

    want = read_metrics(tmp_path / "full" / "models" / "m")
    got = read_metrics(out)
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for w, g in zip(want, got, strict=True):
        assert g["loss"] == pytest.approx(w["loss"], rel=1e-6, abs=1e-7), (w, g)
        assert g["lr"] == pytest.approx(w["lr"], rel=1e-12)
        assert g["tokens"] == w["tokens"]
    a, b = _weights(tmp_path / "full" / "models" / "m" / "model"), _weights(out / "model")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=1e-7)


def test_changed_config_is_refused_naming_the_key(world_tokens, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError):
        pretrain(_cfg(world_tokens, num_steps=4, checkpoint_every=2, lr=-1), out)
    pretrain(_cfg(world_tokens, num_steps=4), out)
    with pytest.raises(ResumeError, match=r"lr: 0.003 -> 0.001"):
        pretrain(_cfg(world_tokens, num_steps=4, lr=1e-3), out)
    # runtime-only keys (threads, logging, checkpoint cadence) never block a rerun
    assert pretrain(_cfg(world_tokens, num_steps=4, log_every=1, num_threads=2), out).reused


def test_continue_keeps_the_tokenizer_and_checks_it(world_tokens, tmp_path):
    trained = pretrain(_cfg(world_tokens, num_steps=20), tmp_path / "base")
    base, base_stats = trained.model_dir, trained.manifest.stats
    cont = PretrainConfig(
        tokens=str(world_tokens["tokens"]),
        init_from=str(base),
        num_steps=10,
        lr=1e-3,
        micro_batch_size=8,
        progress=False,
        checkpoint_every=0,
    )
    result = pretrain(cont, tmp_path / "cont")
    st = result.manifest.stats
    assert st["init_from"] == str(base)
    # continues where the base left off, far below a fresh model's first loss
    assert st["first_loss"] < base_stats["first_loss"] - 0.5
    assert abs(st["first_loss"] - base_stats["last_loss"]) < 0.5
    assert (result.model_dir / "tokenizer.json").read_bytes() == (
        base / "tokenizer.json"
    ).read_bytes()

    # a tokenizer that differs from the shards' is refused before any step
    other = tmp_path / "other-tok"
    other.mkdir()
    from instructpt.synth.tiny import train_tokenizer

    train_tokenizer(["completely different text " * 50], vocab_size=300).save_pretrained(other)
    with pytest.raises(InputError, match="another tokenizer"):
        pretrain(cont.model_copy(update={"tokenizer": str(other)}), tmp_path / "bad")
    with pytest.raises(InputError, match="no such model directory"):
        pretrain(cont.model_copy(update={"init_from": str(tmp_path / "nope")}), tmp_path / "x")


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="unknown model preset 'nope'"):
        PretrainConfig(tokens="t", tokenizer="k", model={"preset": "nope"})
    with pytest.raises(ValueError, match="only exist in the gemma2 family"):
        PretrainConfig(tokens="t", tokenizer="k", model={"final_logit_softcapping": 30.0})
    with pytest.raises(ValueError, match="tokenizer is required"):
        PretrainConfig(tokens="t")
    with pytest.raises(ValueError, match="model options apply to training from scratch"):
        PretrainConfig(tokens="t", init_from="m", model={"num_layers": 3})
    with pytest.raises(ValueError, match="extra"):
        PretrainConfig(tokens="t", tokenizer="k", model={"hidden": 3})
