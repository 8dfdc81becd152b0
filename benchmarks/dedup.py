"""Corpus-wide near-duplicate pair removal: throughput, memory, recall on planted duplicates.

A seeded generator writes `--pairs` synthetic question-answer pairs, about
10% of them planted near duplicates of an earlier pair: an exact copy with
changed case and punctuation (Jaccard 1), a copy with one word appended
(Jaccard ~0.94), or with its last word replaced (Jaccard ~0.88), all at or
above the default threshold of 0.8 on word-3-gram sets. Each implementation
runs in a fresh process and reports pairs/s (normalization, hashing, MinHash,
LSH), the growth of peak RSS over the process's baseline, and recall (share
of planted duplicates dropped) by true Jaccard, plus the false-drop rate on
the other pairs.

- `instructpt`: filter.dedup.CorpusDeduper (band hashes in sorted numpy runs).
- `datasketch`: `MinHashLSH` queried then inserted pair by pair, fed the very
  same shingle hashes and permutations, so its signatures are identical and
  its decisions must agree (reported as `agree`); run on `--baseline-pairs`
  only, since it holds a Python dict entry per band per pair.

    .venv/bin/python benchmarks/dedup.py --pairs 1000000 --baseline-pairs 100000
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

BATCH = 4096


def vocabulary(rng: random.Random, size: int = 20000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(size)]


def generate(n: int, seed: int) -> Iterator[tuple[str, str, int]]:
    """(question, answer, kind): kind 0 = original, 1/2/3 = planted (exact / append / replace)."""
    rng = random.Random(seed)
    vocab = vocabulary(rng)
    recent: list[tuple[str, str]] = []  # bounded pool of earlier originals to copy from
    for _ in range(n):
        if recent and rng.random() < 0.1:
            q, a = rng.choice(recent)
            kind = rng.randint(1, 3)
            if kind == 1:
                yield q.upper().rstrip("?") + " ?", a.lower() + ".", kind
            elif kind == 2:
                yield q, f"{a} {rng.choice(vocab)}", kind
            else:
                yield q, " ".join([*a.split()[:-1], rng.choice(vocab)]), kind
            continue
        q = " ".join(rng.choices(vocab, k=rng.randint(8, 16))) + "?"
        a = " ".join(rng.choices(vocab, k=rng.randint(2, 12)))
        if len(recent) < 100_000:
            recent.append((q, a))
        else:
            recent[rng.randrange(len(recent))] = (q, a)
        yield q, a, 0


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(impl: str, n: int, seed: int, threshold: float, num_perm: int) -> dict:
    from instructpt.filter.dedup import CorpusDeduper, pair_shingles
    from instructpt.filter.normalize import WordHasher

    hasher = WordHasher()
    dedup = CorpusDeduper(threshold, num_perm, 1)
    pairs = list(generate(n, seed))  # materialized before timing: only dedup is measured
    kinds = np.array([k for _, _, k in pairs], dtype=np.int8)
    base_rss = rss_mb()
    dup = np.zeros(n, dtype=bool)
    start = time.perf_counter()
    if impl == "instructpt":
        for lo in range(0, n, BATCH):
            batch = [pair_shingles(q, a, hasher) for q, a, _ in pairs[lo : lo + BATCH]]
            dup[lo : lo + len(batch)] = dedup.check(batch)[0]
        index_bytes = dedup.index.nbytes
    else:
        from datasketch import MinHash, MinHashLSH

        lsh = MinHashLSH(num_perm=num_perm, params=(dedup.bands, dedup.rows))
        a, b = dedup.hasher.permutations
        for i, (q, ans, _) in enumerate(pairs):
            m = MinHash(num_perm, hashfunc=int, permutations=(a, b), scheme="affine32")
            m.update_batch(pair_shingles(q, ans, hasher).tolist())
            if lsh.query(m):
                dup[i] = True
            else:
                lsh.insert(i, m, check_duplication=False)
        index_bytes = -1
    seconds = time.perf_counter() - start
    # true Jaccard of each planted pair vs its source is set by construction; measure recall by kind
    recall = {str(k): float(dup[kinds == k].mean()) for k in (1, 2, 3) if (kinds == k).any()}
    kept = int((~dup).sum())
    out = {
        "impl": impl,
        "pairs": n,
        "planted": int((kinds > 0).sum()),
        "seconds": seconds,
        "pairs_per_s": n / seconds,
        "rss_growth_mb": rss_mb() - base_rss,
        "rss_peak_mb": rss_mb(),
        "kept": kept,
        "index_bytes_per_kept_pair": index_bytes / kept if index_bytes >= 0 else None,
        "recall": recall,
        "recall_all": float(dup[kinds > 0].mean()),
        "false_drop_rate": float(dup[kinds == 0].mean()),
    }
    if impl == "instructpt":
        np.save(f"/tmp/dedup-bench-{n}-{seed}.npy", dup)
    else:
        ours = f"/tmp/dedup-bench-{n}-{seed}.npy"
        if Path(ours).is_file():
            out["agree"] = float((np.load(ours) == dup).mean())
    return out


def child(impl: str, n: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", impl, "--pairs", str(n), "--seed", str(args.seed)]
    cmd += ["--threshold", str(args.threshold), "--num-perm", str(args.num_perm)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--baseline-pairs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--num-perm", type=int, default=64)
    parser.add_argument("--child", choices=["instructpt", "datasketch"])
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run(args.child, args.pairs, args.seed, args.threshold, args.num_perm)))
        return
    rows = [child("instructpt", args.pairs, args)]
    if args.baseline_pairs:
        rows.append(child("instructpt", args.baseline_pairs, args))
        rows.append(child("datasketch", args.baseline_pairs, args))
    print(
        f"\n{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"threshold {args.threshold}, num_perm {args.num_perm}, seed {args.seed}\n"
    )
    print(
        "| impl | pairs | pairs/s | peak RSS growth (MB) | RSS growth / pair (B) "
        "| index B / kept pair "
        "| recall exact / +1 word / last word replaced | false drops | agrees with ours |"
    )
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|")
    for r in rows:
        rec = " / ".join(f"{r['recall'].get(k, float('nan')):.3f}" for k in ("1", "2", "3"))
        idx = r["index_bytes_per_kept_pair"]
        per_pair = r["rss_growth_mb"] * 2**20 / r["pairs"]
        print(
            f"| {r['impl']} | {r['pairs']:,} | {r['pairs_per_s']:,.0f} | {r['rss_growth_mb']:,.0f} "
            f"| {per_pair:,.0f} | {'' if idx is None else f'{idx:.1f}'} "
            f"| {rec} (all {r['recall_all']:.3f}) | {r['false_drop_rate']:.5f} "
            f"| {r.get('agree', '')} |"
        )


if __name__ == "__main__":
    main()
