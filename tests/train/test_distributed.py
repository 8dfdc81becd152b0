"""Two real processes under torchrun (gloo on CPU): DDP and FSDP2 train the same model as one
process with the same global batch, and FSDP2 resumes from its checkpoints."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from instructpt.core.manifest import read_manifest
from instructpt.train.pretrain import read_metrics

pytestmark = [pytest.mark.slow, pytest.mark.ci]


def _run(world_tokens, run_dir: Path, nproc: int, micro: int, strategy: str = "auto"):
    args = [
        "pretrain", "--run-dir", str(run_dir), "--name", "m",
        "--tokens", str(world_tokens["tokens"]), "--tokenizer", str(world_tokens["tokenizer"]),
        "--model-preset", "tiny-llama", "--micro-batch-size", str(micro), "--num-steps", "12",
        "--checkpoint-every", "5", "--log-every", "3", "--strategy", strategy,
    ]  # fmt: skip
    if nproc == 1:
        cmd = [sys.executable, "-m", "instructpt", *args]
    else:
        torchrun = str(Path(sys.executable).with_name("torchrun"))
        cmd = [torchrun, "--standalone", "--nproc_per_node", str(nproc), "-m", "instructpt"]
        cmd += args
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, run_dir / "models" / "m"


def _same_run(a: Path, b: Path) -> None:
    la, lb = read_metrics(a), read_metrics(b)
    assert [r["step"] for r in la] == [r["step"] for r in lb] == [3, 6, 9, 12]
    for ra, rb in zip(la, lb, strict=True):
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-5), (ra, rb)
        assert rb["tokens"] == ra["tokens"]
    wa = load_file(a / "model" / "model.safetensors")
    wb = load_file(b / "model" / "model.safetensors")
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-3, atol=2e-4)  # Adam amplifies fp noise


def test_ddp_and_fsdp_match_one_process_and_fsdp_resumes(world_tokens, tmp_path):
    _, single = _run(world_tokens, tmp_path / "single", 1, micro=8)
    out, ddp = _run(world_tokens, tmp_path / "ddp", 2, micro=4, strategy="ddp")
    assert out.count("pretrain: trained") == 1  # only rank 0 reports
    _same_run(single, ddp)
    _, fsdp = _run(world_tokens, tmp_path / "fsdp", 2, micro=4, strategy="fsdp")
    _same_run(single, fsdp)
    # the chunked linear CE runs inside DDP's forward; FSDP2 shards the head: the model's loss
    paths = [read_manifest(d).stats["loss_path"] for d in (single, ddp, fsdp)]  # type: ignore[union-attr]
    assert paths == ["chunked-ce", "chunked-ce", "model"]

    # as after a kill past step 10: only the checkpoints remain; the rerun resumes there
    assert sorted(p.name for p in (fsdp / "checkpoints").iterdir()) == [
        "step-00000005", "step-00000010",
    ]  # fmt: skip
    shutil.rmtree(fsdp / "model")
    (fsdp / "_manifest.json").unlink()
    _run(world_tokens, tmp_path / "fsdp", 2, micro=4, strategy="fsdp")
    assert '"resumed_from_step": 10' in (fsdp / "_manifest.json").read_text()
    _same_run(single, fsdp)
