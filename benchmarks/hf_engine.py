"""The hf engine against a bare `model.generate`, in fp32 and bf16, on a trained synthesizer.

Why: issue 24 asks the hf engine for >= 0.95x a bare `generate` loop, and on a
2-core CPU the synthesize stage is most of the LM demo's wall time. This times,
on the same held-out world prompts (the exact synthesizer format, one batch
composition), greedy, the same stop string `</s>`:

  hf-engine   `HFEngine.generate` (left padding, `_StopAfterPrompt`, per-row decode, cut)
  bare        `model.generate(..., stop_strings=["</s>"], tokenizer=...)` on the same model
              object and the same left-padded batches, ids decoded once at the end

each in float32 and bfloat16 (a fresh model load per dtype), one untimed warm-up
batch, then `--repeats` interleaved timed passes (median new tokens/s). The
bf16 completions are also parsed and scored against the world
(`train/synth_eval.score_completions`), since bf16 changes greedy argmaxes:
the speed is only worth having if the pairs stay as right.

    .venv/bin/python benchmarks/hf_engine.py --model runs/demo-lm/models/synthesizer \\
        --world runs/demo-lm/world --prompts 16 --out /tmp/hf_engine.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

from instructpt.synth.config import HFEngineConfig
from instructpt.synth.engines.base import Completion, DecodingParams, Prompt
from instructpt.synth.engines.hf import HFEngine
from instructpt.synth.format import EOS, context_prompt
from instructpt.train.synth_data import load_world
from instructpt.train.synth_eval import score_completions, world_eval_items


def bare_generate(engine: HFEngine, prompts: list[Prompt], params: DecodingParams) -> int:
    """New tokens of plain `generate` with transformers' own stop-string argument."""
    total = 0
    size = engine.options.batch_size
    for start in range(0, len(prompts), size):
        ids, mask = engine._left_padded(prompts[start : start + size])
        with torch.inference_mode():
            out = engine.lm.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=params.max_new_tokens,
                do_sample=False,
                pad_token_id=engine.pad_id,
                eos_token_id=engine.eos_id,
                stop_strings=list(params.stop),
                tokenizer=engine.tokenizer,
            )
        for row in out[:, ids.shape[1] :].tolist():
            total += row.index(engine.pad_id) if engine.pad_id in row else len(row)
    return total


def measure(args: argparse.Namespace, dtype: str, prompts: list[Prompt]) -> dict[str, Any]:
    params = DecodingParams(max_new_tokens=args.max_new_tokens, stop=(EOS,))
    options = HFEngineConfig(batch_size=args.batch_size, device="cpu", dtype=dtype)
    engine = HFEngine(str(args.model), None, options)
    completions: list[Completion] = []

    def run_engine() -> int:
        completions[:] = engine.generate(prompts, params)
        return sum(c.completion_tokens for c in completions)

    def run_bare() -> int:
        return bare_generate(engine, prompts, params)

    runners = {"hf-engine": run_engine, "bare": run_bare}
    warm = prompts[: args.batch_size]
    engine.generate(warm, params)
    bare_generate(engine, warm, params)
    rates: dict[str, list[float]] = {name: [] for name in runners}
    tokens: dict[str, int] = {}
    for _ in range(args.repeats):
        for name, fn in runners.items():
            start = time.perf_counter()
            tokens[name] = fn()
            rates[name].append(tokens[name] / (time.perf_counter() - start))
    engine.close()
    rows = [
        {"dtype": dtype, "runner": name, "new_tokens": tokens[name],
         "new_tokens_per_s": statistics.median(rates[name])}
        for name in runners
    ]  # fmt: skip
    return {"rows": rows, "completions": completions}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="a trained synthesizer folder")
    ap.add_argument("--world", type=Path, required=True, help="the world folder it was trained on")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    held = load_world(args.world, ["augment", "probe"])
    items = world_eval_items(held, args.prompts, args.seed, ["person"])
    tokenizer = AutoTokenizer.from_pretrained(args.model)  # the engine loads the same one
    prompts = []
    for item in items:
        text = context_prompt(item.text)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        prompts.append(Prompt(text, tuple(ids)))

    started = time.perf_counter()
    result: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "rows": [],
        "quality": {},
    }
    texts: dict[str, list[str]] = {}
    for dtype in ("float32", "bfloat16"):
        measured = measure(args, dtype, prompts)
        result["rows"] += measured["rows"]
        texts[dtype] = [c.text for c in measured["completions"]]
        scored = score_completions(items, measured["completions"])
        result["quality"][dtype] = {
            k: scored[k]
            for k in ("parse_yield", "pairs_per_text", "correct_fraction",
                      "correct_attributes_per_text", "stopped_fraction")
        }  # fmt: skip
    result["identical_completions_bf16_vs_fp32"] = sum(
        a == b for a, b in zip(texts["float32"], texts["bfloat16"], strict=True)
    ) / len(prompts)
    result["seconds"] = time.perf_counter() - started
    rate = {(r["dtype"], r["runner"]): r["new_tokens_per_s"] for r in result["rows"]}
    for dtype in ("float32", "bfloat16"):
        ratio = rate[(dtype, "hf-engine")] / rate[(dtype, "bare")]
        print(f"{dtype}: hf engine {rate[(dtype, 'hf-engine')]:.1f} new tokens/s, "
              f"bare {rate[(dtype, 'bare')]:.1f}, ratio {ratio:.3f}")  # fmt: skip
        print(f"  quality: {result['quality'][dtype]}")
    speedup = rate[("bfloat16", "hf-engine")] / rate[("float32", "hf-engine")]
    same = result["identical_completions_bf16_vs_fp32"]
    print(f"bf16 / fp32 (engine): {speedup:.2f}x; identical completions {same:.0%}")
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
