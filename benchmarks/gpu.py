"""The GPU figures of issue 24 in one go (< 10 min on one H100/H200): training and synthesis.

Why one script: a GPU is lent for minutes at a time, so everything a user would
check first is measured in one call and written as one JSON of a fixed shape
(tested on CPU with `--tiny`: tests/test_gpu_bench.py), plus a markdown table.

(a) Training, per preset (mistral-500m, mistral-1.3b; bf16 autocast, seq 2048, the
    same random-token batches for every runner), reusing benchmarks/train_gpu.py's
    runners and timing (untimed warm-up steps, then timed steps ended by a CUDA sync):
      ours                 train_loop, eager, fused_loss auto (the chunked linear CE)
      ours-plain-ce        train_loop, eager, fused_loss off (the model's own loss)
      ours-compile         train_loop, compile=True, fused_loss auto
      ours-compile-plain-ce
      hf                   transformers.Trainer, bf16, adamw_torch_fused
    tokens/s, MFU = tokens/s x `presets.flops_per_token` (6N + attention, PaLM) / the
    device's dense bf16 peak (`loop.known_peak_flops`; null with a reason on CPU or
    an unknown GPU), peak memory (`torch.cuda.max_memory_allocated`, null on CPU).
    A runner that fails (OOM) keeps its row with `error`; once the time budget is
    spent the rest are rows with `skipped`. With `--tiny` on CPU the compile
    runners are skipped (inductor on CPU costs 10-40 s each).
(b) Synthesis: a randomly initialised model of `--synth-preset` with a word-level
    tokenizer of its vocabulary, saved to a temporary folder, loaded by the repo's
    hf engine (`instructpt.synth.engines.hf.HFEngine`, dtype auto: bf16 on a GPU);
    the same prompts (random token ids, all one length) go through the engine and
    through a bare `model.generate` loop on the engine's own model object (greedy,
    same batch size, same max new tokens). One untimed warm-up batch each, then
    `--synth-repeats` interleaved timed passes; new tokens/s is the median;
    `ratio` = engine / bare (goal >= 0.95).

JSON (`--out`), schema 1:
    {"schema": 1, "tiny": bool, "date": str, "seconds": float,
     "device": {"name": str, "cuda": bool, "peak_bf16_flops": float | null},
     "versions": {"torch": str, "transformers": str, "python": str},
     "train": {"settings": {"batch": int, "seq_len": int, "vocab": int, "warmup": int,
                            "steps": int, "precision": "bf16" | "fp32", "budget_s": float},
               "rows": [{"preset": str, "params": int, "flops_per_token": float,
                         "runner": str, "compile": bool, "fused_loss": "auto" | "off",
                         "loss_path": str | null, "tokens_per_s": float | null,
                         "s_per_step": float | null, "mfu": float | null,
                         "mfu_reason": str | null, "peak_mem_gib": float | null,
                         "final_loss": float | null, "vs_hf": float | null,
                         "error": str | null, "skipped": str | null}]},
     "synth": {"settings": {"preset": str, "vocab": int, "prompts": int, "prompt_len": int,
                            "max_new_tokens": int, "batch_size": int, "dtype": str,
                            "repeats": int},
               "rows": [{"runner": "hf-engine" | "bare-generate", "new_tokens": int | null,
                         "seconds": float | null, "new_tokens_per_s": float | null,
                         "error": str | null}],
               "ratio": float | null}}

    PYTHONPATH=src python3 benchmarks/gpu.py --out gpu.json          # on the GPU, ~8 min
    .venv/bin/python benchmarks/gpu.py --tiny --out /tmp/gpu.json    # CPU shape check, seconds
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_gpu  # benchmarks/ is not a package; its orjson shim comes before loop.py

from instructpt.train.loop import known_peak_flops
from instructpt.train.presets import (
    build_model,
    count_parameters,
    flops_per_token,
    resolve_preset,
)

SCHEMA = 1
GIB = 2**30
#: runner -> (compile, fused_loss); all but hf are train_gpu.run_ours.
OURS = {
    "ours": (False, "auto"),
    "ours-plain-ce": (False, "off"),
    "ours-compile": (True, "auto"),
    "ours-compile-plain-ce": (True, "off"),
}
RUNNERS = [*OURS, "hf"]
FULL = {
    "presets": "mistral-500m,mistral-1.3b",
    "vocab": 32000, "seq_len": 2048, "batch": 8, "warmup": 3, "steps": 10, "budget_s": 480.0,
    "synth_preset": "mistral-500m", "synth_vocab": 32000, "prompts": 64, "prompt_len": 512,
    "max_new_tokens": 128, "synth_batch": 16, "synth_repeats": 2,
}  # fmt: skip
TINY = {
    "presets": "tiny-mistral,tiny-llama",
    "vocab": 512, "seq_len": 64, "batch": 2, "warmup": 1, "steps": 2, "budget_s": 60.0,
    "synth_preset": "tiny-llama", "synth_vocab": 512, "prompts": 4, "prompt_len": 12,
    "max_new_tokens": 8, "synth_batch": 2, "synth_repeats": 1,
}  # fmt: skip


def error_text(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines() or [""]
    return f"{type(exc).__name__}: {lines[0][:300]}"


# --------------------------------------------------------------------------- training


def train_rows(args: argparse.Namespace, device: str, peak: float | None) -> list[dict[str, Any]]:
    """One row per (preset, runner), in the documented shape."""
    cuda = device.startswith("cuda")
    deadline = time.perf_counter() + args.budget_s
    rows: list[dict[str, Any]] = []
    for preset in [p.strip() for p in args.presets.split(",") if p.strip()]:
        g = torch.Generator().manual_seed(0)
        shape = (args.warmup + args.steps, args.batch, args.seq_len)
        data = torch.randint(0, args.vocab, shape, generator=g)
        b = train_gpu.Bench(preset, args.vocab, data, args.warmup, args.steps, device, False)
        shell = b.model("meta")  # shapes only: parameter count and FLOPs per token
        params, fpt = count_parameters(shell)["total"], flops_per_token(shell, args.seq_len)
        del shell
        for runner in RUNNERS:
            compile_, fused = OURS.get(runner, ("compile" in runner, "off"))
            row: dict[str, Any] = {
                "preset": preset, "params": params, "flops_per_token": fpt, "runner": runner,
                "compile": compile_, "fused_loss": fused, "loss_path": None,
                "tokens_per_s": None, "s_per_step": None, "mfu": None, "mfu_reason": None,
                "peak_mem_gib": None, "final_loss": None, "vs_hf": None, "error": None,
                "skipped": None,
            }  # fmt: skip
            if runner == "hf":
                row["loss_path"] = "model"
            if compile_ and not cuda and args.tiny:
                row["skipped"] = "compile on CPU: inductor takes 10-40 s per model"
            elif time.perf_counter() > deadline:
                row["skipped"] = f"time budget of {args.budget_s:.0f} s spent"
            else:
                run_training(b, runner, compile_, fused, row)
            row["mfu"], row["mfu_reason"] = mfu(row, fpt, peak, device)
            rows.append(row)
            print(json.dumps(row), flush=True)
    for row in rows:
        base = next((r for r in rows if r["preset"] == row["preset"] and r["runner"] == "hf"), None)
        if base and base["tokens_per_s"] and row["tokens_per_s"]:
            row["vs_hf"] = row["tokens_per_s"] / base["tokens_per_s"]
    return rows


def run_training(
    b: train_gpu.Bench, runner: str, compile_: bool, fused: str, row: dict[str, Any]
) -> None:
    """Train with one runner into `row` (its figures, or its error)."""
    train_gpu.free(b.device)
    try:
        if runner == "hf":
            out = train_gpu.run_hf(b, compile_)
        else:
            out = train_gpu.run_ours(b, compile_, fused_loss=fused)
        row["loss_path"] = out.get("loss_path", row["loss_path"])
        row["tokens_per_s"], row["s_per_step"] = out["tokens_per_s"], out["s_per_step"]
        row["final_loss"] = out["final_loss"]
    except Exception as exc:  # OOM or a broken runner: record it, go on
        row["error"] = error_text(exc)
        if not isinstance(exc, torch.OutOfMemoryError):
            traceback.print_exc()
    if b.cuda:
        row["peak_mem_gib"] = torch.cuda.max_memory_allocated(b.device) / GIB
    if compile_:
        torch._dynamo.reset()
    train_gpu.free(b.device)


def mfu(
    row: dict[str, Any], fpt: float, peak: float | None, device: str
) -> tuple[float | None, str | None]:
    """MFU and, when there is none, why."""
    if not device.startswith("cuda"):
        return None, "no GPU: MFU needs a GPU's bf16 peak FLOP/s"
    if peak is None:
        return None, f"unknown bf16 peak for {torch.cuda.get_device_name(device)!r}"
    if not row["tokens_per_s"]:
        return None, "no tokens/s (the runner failed or was skipped)"
    return row["tokens_per_s"] * fpt / peak, None


# --------------------------------------------------------------------------- synthesis


def save_synth_model(folder: Path, preset: str, vocab: int) -> None:
    """A random model of `preset` and a word-level tokenizer of exactly `vocab` ids."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<s>", "</s>", *(f"w{i}" for i in range(vocab - 3))]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="</s>"
    )
    model = build_model(resolve_preset(preset), vocab, 1, 2, seed=0)
    model.save_pretrained(folder, safe_serialization=True)
    fast.save_pretrained(folder)


def bare_generate(lm: Any, prompts: list[Any], batch: int, new: int, eos: int) -> int:
    """New tokens (up to EOS) of a plain `model.generate` loop over `prompts`, greedy."""
    total = 0
    device = next(lm.parameters()).device
    for start in range(0, len(prompts), batch):
        ids = torch.tensor([p.token_ids for p in prompts[start : start + batch]], device=device)
        with torch.inference_mode():
            out = lm.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=new,
                do_sample=False,
                pad_token_id=eos,
                eos_token_id=eos,
            )
        for row in out[:, ids.shape[1] :].tolist():
            total += row.index(eos) if eos in row else len(row)
    return total


def synth_section(args: argparse.Namespace, device: str) -> dict[str, Any]:
    from instructpt.synth.engines.base import DecodingParams, Prompt
    from instructpt.synth.engines.hf import HFEngine
    from instructpt.synth.engines.options import HFEngineConfig

    settings = {
        "preset": args.synth_preset, "vocab": args.synth_vocab, "prompts": args.prompts,
        "prompt_len": args.prompt_len, "max_new_tokens": args.max_new_tokens,
        "batch_size": args.synth_batch, "dtype": "auto", "repeats": args.synth_repeats,
    }  # fmt: skip
    rows = {
        name: {"runner": name, "new_tokens": None, "seconds": None, "new_tokens_per_s": None,
               "error": None}
        for name in ("hf-engine", "bare-generate")
    }  # fmt: skip
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, args.synth_vocab, (args.prompts, args.prompt_len), generator=g)
    prompts = [Prompt("", tuple(r)) for r in ids.tolist()]
    params = DecodingParams(max_new_tokens=args.max_new_tokens)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-gpu-synth-") as tmp:
            save_synth_model(Path(tmp), args.synth_preset, args.synth_vocab)
            options = HFEngineConfig(batch_size=args.synth_batch, device=device)
            engine = HFEngine(tmp, None, options)
            settings["dtype"] = str(engine.lm.dtype).removeprefix("torch.")
            eos = engine.eos_id

            def run_engine() -> int:
                return sum(c.completion_tokens for c in engine.generate(prompts, params))

            def run_bare() -> int:
                return bare_generate(
                    engine.lm, prompts, args.synth_batch, params.max_new_tokens, eos
                )

            runs = {"hf-engine": run_engine, "bare-generate": run_bare}
            first = prompts[: args.synth_batch]  # untimed warm-up: kernels, allocator, caches
            engine.generate(first, params)
            bare_generate(engine.lm, first, args.synth_batch, params.max_new_tokens, eos)
            rates: dict[str, list[float]] = {n: [] for n in runs}
            for _ in range(args.synth_repeats):
                for name, fn in runs.items():
                    sync(device)
                    start = time.perf_counter()
                    tokens = fn()
                    sync(device)
                    seconds = time.perf_counter() - start
                    rates[name].append(tokens / seconds)
                    rows[name].update(new_tokens=tokens, seconds=seconds)
            for name in runs:
                rows[name]["new_tokens_per_s"] = statistics.median(rates[name])
            engine.close()
    except Exception as exc:
        traceback.print_exc()
        for row in rows.values():
            row["error"] = row["error"] or error_text(exc)
    e, bare = rows["hf-engine"]["new_tokens_per_s"], rows["bare-generate"]["new_tokens_per_s"]
    return {
        "settings": settings,
        "rows": list(rows.values()),
        "ratio": e / bare if e and bare else None,
    }


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# --------------------------------------------------------------------------- output


def markdown(result: dict[str, Any]) -> str:
    """The RESULTS.md tables of a result."""

    def fmt(v: Any, spec: str) -> str:
        return "n/a" if v is None else format(v, spec)

    out = [
        f"device: {result['device']['name']}; torch {result['versions']['torch']}, "
        f"transformers {result['versions']['transformers']}; {result['date']}",
        "",
        "| preset | params | runner | loss path | tokens/s | MFU | peak mem GiB | final loss "
        "| vs HF | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["train"]["rows"]:
        note = (r["error"] or r["skipped"] or r["mfu_reason"] or "").replace("|", "/")
        out.append(
            f"| {r['preset']} | {r['params'] / 1e6:.1f}M | {r['runner']} | {r['loss_path'] or '-'} "
            f"| {fmt(r['tokens_per_s'], ',.0f')} | {fmt(r['mfu'], '.1%')} "
            f"| {fmt(r['peak_mem_gib'], '.2f')} | {fmt(r['final_loss'], '.4f')} "
            f"| {fmt(r['vs_hf'], '.2f')} | {note} |"
        )
    s = result["synth"]
    out += [
        "",
        f"synthesis: {s['settings']['preset']} ({s['settings']['dtype']}), "
        f"{s['settings']['prompts']} prompts of {s['settings']['prompt_len']} tokens, "
        f"{s['settings']['max_new_tokens']} new tokens, batch {s['settings']['batch_size']}",
        "",
        "| runner | new tokens | seconds | new tokens/s | error |",
        "|---|---|---|---|---|",
    ]
    for r in s["rows"]:
        out.append(
            f"| {r['runner']} | {fmt(r['new_tokens'], ',')} | {fmt(r['seconds'], '.2f')} "
            f"| {fmt(r['new_tokens_per_s'], ',.0f')} | {r['error'] or ''} |"
        )
    out.append(f"\nhf engine / bare generate: {fmt(s['ratio'], '.3f')}x (goal >= 0.95x)")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="tiny presets, a few steps: CPU check")
    ap.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    ap.add_argument("--out", type=Path, default=None, help="write the JSON here")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--skip-synth", action="store_true")
    for key, value in FULL.items():
        ap.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=None)
    args = ap.parse_args()
    for key, value in (TINY if args.tiny else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.startswith("cuda")
    if not cuda:
        torch.set_num_threads(min(2, torch.get_num_threads()))
    import transformers

    started = time.perf_counter()
    name = torch.cuda.get_device_name(device) if cuda else f"cpu ({platform.machine()})"
    peak = known_peak_flops(name) if cuda else None
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "tiny": args.tiny,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": 0.0,
        "device": {"name": name, "cuda": cuda, "peak_bf16_flops": peak},
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
        },
        "train": {
            "settings": {
                "batch": args.batch,
                "seq_len": args.seq_len,
                "vocab": args.vocab,
                "warmup": args.warmup,
                "steps": args.steps,
                "precision": "bf16" if cuda else "fp32",
                "budget_s": args.budget_s,
            },
            "rows": [] if args.skip_train else train_rows(args, device, peak),
        },
    }
    result["synth"] = (
        {"settings": {}, "rows": [], "ratio": None}
        if args.skip_synth
        else synth_section(args, device)
    )
    result["seconds"] = time.perf_counter() - started
    print(markdown(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
