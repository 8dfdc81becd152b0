"""mix + tokenize + pack throughput, side by side with bare `tokenizers` `encode_batch`.

Builds (untimed) a synthetic corpus of web-like documents, ingests it and
trains a byte-level BPE on a sample; then times, in this one process:
  - the pipeline: `mix` (vanilla recipe: read shards, encode every document
    once, plan the exact-token budget, seeded shuffle, write text shards +
    token cache + parquet) followed by `tokenize` (frame BOS/EOS, write flat
    uint16 token shards + index), and, as a second data point, `tokenize`
    re-encoding the text instead of reading the mix's token cache;
  - the baseline: `Tokenizer.encode_batch(texts, add_special_tokens=False)`
    over the same mixed texts already in memory (before and after the
    pipeline; the faster of the two is the reference).
The cook stage does not exist yet, so cook is not part of the timed pipeline.

    .venv/bin/python benchmarks/pack.py --docs 20000 --workers 2
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import tempfile
import time
from pathlib import Path

import orjson

from instructpt.core.tokenizers import load_tokenizer_spec
from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.mix.config import MixConfig
from instructpt.mix.stage import mix, read_mix
from instructpt.pack.config import TokenizeConfig
from instructpt.pack.tokenize import tokenize
from instructpt.pack.tokenizer import train_tokenizer

SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ner",
    "to",
    "sa",
    "ri",
    "ven",
    "dal",
    "or",
    "ith",
    "ba",
    "que",
    "zen",
    "lu",
    "pra",
    "mon",
    "tes",
    "ga",
    "fi",
    "ul",
    "dor",
]


def make_words(rng: random.Random, n: int) -> list[str]:
    return ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))) for _ in range(n)]


def make_corpus(path: Path, docs: int, seed: int) -> int:
    rng = random.Random(seed)
    words = make_words(rng, 3000)
    weights = [1 / (i + 1) for i in range(len(words))]  # Zipf-like, as in real text
    size = 0
    with path.open("wb") as fh:
        for i in range(docs):
            sentences = []
            for _ in range(rng.randint(3, 12)):
                ws = rng.choices(words, weights, k=rng.randint(6, 18))
                sentences.append(" ".join(ws).capitalize() + rng.choice([".", ".", "?", "!"]))
            text = " ".join(sentences) + f" ({rng.randint(1800, 2025)})"
            size += len(text.encode())
            fh.write(orjson.dumps({"id": f"d{i}", "text": text}) + b"\n")
    return size


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--keep", type=Path, default=None, help="Work here and keep the files.")
    ap.add_argument(
        "--no-parquet", action="store_true", help="Leave the parquet export out of the timed mix."
    )
    args = ap.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-pack-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        nbytes = make_corpus(root / "docs.jsonl", args.docs, seed=0)
        ingest(
            IngestConfig(input=[str(root / "docs.jsonl")], num_shards=args.shards, progress=False),
            root / "corpus",
        )
        sample = [orjson.loads(x)["text"] for x in (root / "docs.jsonl").open("rb")][:5000]
        tok_dir = train_tokenizer(sample, root / "tokenizer", vocab_size=args.vocab)

        spec = load_tokenizer_spec(tok_dir)
        backend = spec.backend()

        def baseline() -> float:
            texts = [r["text"] for r in read_mix(root / "mix")]
            _, sec = timed(lambda: backend.encode_batch(texts, add_special_tokens=False))
            return sec

        mcfg = MixConfig(
            recipe="vanilla",
            tokenizer=str(tok_dir),
            corpus=str(root / "corpus"),
            num_shards=args.shards,
            num_workers=args.workers,
            write_parquet=not args.no_parquet,
            progress=False,
        )
        tcfg = TokenizeConfig(tokenizer=str(tok_dir), num_workers=args.workers, progress=False)
        # The baseline needs the mixed texts; a first mix (untimed) provides them.
        mix(mcfg, root / "mix0")
        shutil.move(root / "mix0", root / "mix")
        base1 = baseline()
        shutil.rmtree(root / "mix")

        m, t_mix = timed(lambda: mix(mcfg, root / "mix"))
        tm, t_tok = timed(lambda: tokenize(tcfg, root / "mix", root / "tokens"))
        no_cache = tcfg.model_copy(update={"use_mix_cache": False})
        _, t_tok_text = timed(lambda: tokenize(no_cache, root / "mix", root / "tokens-text"))
        base2 = baseline()

        base = min(base1, base2)
        tokens = tm.stats["tokens"]
        content = tokens - spec.num_frame_tokens * tm.stats["records"]
        mb = nbytes / 1e6
        rows = [
            ("bare encode_batch (reference)", base, content),
            ("mix (vanilla)", t_mix, tokens),
            ("tokenize+pack, ids from mix cache", t_tok, tokens),
            ("mix + tokenize + pack", t_mix + t_tok, tokens),
            ("tokenize+pack, re-encoding text", t_tok_text, tokens),
        ]
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}; docs {args.docs}, {mb:.1f} MB text, "
            f"{m.num_records} records, {tokens} tokens (incl. BOS/EOS), vocab {spec.vocab_size}, "
            f"dtype {tm.stats['dtype']}, {args.shards} shards, workers {args.workers}; "
            f"baseline runs {base1:.2f} s / {base2:.2f} s"
        )
        print("| what | wall s | MB/s | tokens/s | speed vs bare encode_batch |")
        print("|---|---|---|---|---|")
        for name, sec, ntok in rows:
            print(
                f"| {name} | {sec:.2f} | {mb / sec:.2f} | {ntok / sec:,.0f} | {base / sec:.2f}x |"
            )
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
