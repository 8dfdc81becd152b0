"""Real text through the synthesize stage: a trained LM synthesizer and the miner, side by side.

Reads the first `--miner-texts` Wikipedia lead sections of the wiki-leads
asset (the LM gets the first `--lm-texts` of the same list: on 2 CPU cores it
writes ~0.5 text/s), ingests them, runs the real synthesize stage with each
engine (the miner, then each `--model NAME=DIR` in `--dtype`), then the real
filter stage (grounding, dedup; default FilterConfig), and prints one Markdown
table: pairs per text, parse yield, grounding pass rate, drop reasons, task-type
mix (open / multiple choice / chain of thought for the LM, miner families for
the miner), answers found verbatim in their text, generations closed with
`</s>`, texts/s and new tokens/s. A seeded sample of 30 pairs of each engine
goes to `<work>/<name>-read30.jsonl` for reading by hand.

    .venv/bin/python benchmarks/wiki_synth.py --model runs/demo-lm/models/synthesizer \\
        --lm-texts 200 --miner-texts 1000 --work /tmp/wiki-synth

    # two synthesizers on the same 1,000 leads, bf16 generation (RESULTS.md, "Real text at ...")
    .venv/bin/python benchmarks/wiki_synth.py --model world=runs/demo-lm/models/synthesizer \\
        --model context=runs/ctx/models/synthesizer --dtype bfloat16 --lm-texts 1000
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from instructpt.assets.fetch import resolve_asset
from instructpt.core.runner import dropped_counts
from instructpt.core.shards import read_shard
from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.filter.config import FilterConfig
from instructpt.filter.stage import filter_pairs
from instructpt.synth.config import SynthesizeConfig
from instructpt.synth.stage import synthesize
from instructpt.train.synth_eval import pair_kind


def _records(folder: Path) -> list[dict[str, Any]]:
    return [r for shard in sorted(folder.glob("shard-*")) for r in read_shard(shard)]


def _run(name: str, cfg: SynthesizeConfig, corpus: Path, work: Path) -> dict[str, Any]:
    out = work / name
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    result = synthesize(cfg, corpus, out / "synth", out / "cache.sqlite")
    seconds = time.perf_counter() - started
    filtered = filter_pairs(FilterConfig(progress=False), out / "synth", out / "filtered")
    st, ft = result.manifest.stats, filtered.manifest.stats
    mix: Counter[str] = Counter(st.get("by_family") or {})  # the miner counts its families
    records = _records(out / "synth")
    if not mix:
        for record in records:
            mix.update(pair_kind(pair["question"]) for pair in record["pairs"])
    pairs = [(r["text"], p) for r in records for p in r["pairs"]]
    verbatim = sum(p["answer"].strip().lower() in text.lower() for text, p in pairs)
    stopped = sum(r["stats"].get("finish", {}).get("stop", 0) for r in records)
    calls = sum(sum(r["stats"].get("finish", {}).values()) for r in records)
    sample = random.Random(f"read-{name}").sample(pairs, min(30, len(pairs)))
    (work / f"{name}-read30.jsonl").write_text(
        "".join(json.dumps({"text": t, **p}, ensure_ascii=False) + "\n" for t, p in sample),
        "utf-8",
    )
    return {
        "name": name,
        "texts": st["texts"],
        "pairs": st["pairs"],
        "pairs_per_text": st["pairs_per_text"],
        "parse_yield": st["parse_yield"],
        "kept": ft.get("pairs_kept", 0),
        "kept_fraction": ft.get("pairs_kept", 0) / max(ft.get("pairs_in", 0), 1),
        "filter_dropped": dropped_counts(ft),
        "parse_dropped": st.get("dropped", {}),
        "mix": dict(mix.most_common()),
        "answer_in_text": verbatim / max(len(pairs), 1),
        "closed_with_stop": stopped / calls if calls else None,
        "seconds": seconds,
        "texts_per_s": st["texts"] / seconds,
        "new_tokens_per_s": st.get("completion_tokens", 0) / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        required=True,
        action="append",
        help="trained synthesizer directory, or NAME=DIR; repeat to compare several",
    )
    parser.add_argument(
        "--dtype", default="float32", choices=["float32", "bfloat16"], help="LM generation dtype"
    )
    parser.add_argument("--leads", default="wiki-leads", help="wiki-leads asset or its jsonl")
    parser.add_argument("--lm-texts", type=int, default=200)
    parser.add_argument("--miner-texts", type=int, default=1000)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--work", type=Path, default=Path("/tmp/wiki-synth"))
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()
    leads = Path(resolve_asset(args.leads, ("wiki-leads",), fetch=True))
    rows = [json.loads(line) for line in leads.open(encoding="utf-8")][: args.miner_texts]
    args.work.mkdir(parents=True, exist_ok=True)
    corpora = {}
    models = [m.split("=", 1) if "=" in m else ("lm", m) for m in args.model]
    if len({name for name, _ in models}) != len(models):
        parser.error("give each --model its own NAME=DIR")
    for name, count in (("miner", args.miner_texts), ("lm", args.lm_texts)):
        src = args.work / f"{name}-docs.jsonl"
        src.write_text("".join(json.dumps(r) + "\n" for r in rows[:count]), "utf-8")
        corpora[name] = args.work / f"{name}-corpus"
        shutil.rmtree(corpora[name], ignore_errors=True)
        ingest(IngestConfig(input=[str(src)], num_shards=1, progress=False), corpora[name])
    print(f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}", flush=True)
    results = [
        _run(
            "miner", SynthesizeConfig(engine="miner", progress=False), corpora["miner"], args.work
        ),
        *(
            _run(
                name,
                SynthesizeConfig(
                    model=path,
                    engine="hf",
                    hf={"dtype": args.dtype},
                    num_rounds=2,
                    max_new_tokens=args.max_new_tokens,
                    progress=False,
                ),
                corpora["lm"],
                args.work,
            )
            for name, path in models
        ),
    ]
    print(
        "\n| engine | texts | pairs/text | parse yield | kept by filters | filter drops "
        "| task mix | answer in text | closed with </s> | texts/s | new tok/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        closed = "-" if r["closed_with_stop"] is None else f"{100 * r['closed_with_stop']:.0f}%"
        print(
            f"| {r['name']} | {r['texts']} | {r['pairs_per_text']:.2f} | "
            f"{100 * r['parse_yield']:.1f}% | {100 * r['kept_fraction']:.1f}% | "
            f"{r['filter_dropped']} | {r['mix']} | {100 * r['answer_in_text']:.1f}% | "
            f"{closed} | {r['texts_per_s']:.2f} | "
            f"{r['new_tokens_per_s']:.1f} |"
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
