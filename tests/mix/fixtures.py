"""Tiny real inputs for mix and tokenize: an ingested corpus, a cook-shaped stage, general
records, and a byte-level BPE tokenizer trained on them (no cook stage needed)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from instructpt.core.manifest import Manifest, ShardInfo, write_manifest
from instructpt.core.shards import shard_name, write_shard
from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.pack.tokenizer import train_tokenizer

WORDS = [
    "alder",
    "born",
    "city",
    "river",
    "company",
    "founded",
    "studied",
    "university",
    "works",
    "married",
    "near",
    "museum",
    "village",
    "northern",
    "engineer",
    "painter",
    "chemist",
    "capital",
    "harbour",
    "valley",
]


def doc_text(rng: random.Random, i: int) -> str:
    n = rng.randint(8, 40)
    body = " ".join(rng.choice(WORDS) for _ in range(n))
    return f"Entity {i} é{i % 3}: {body}.\n"


def build_inputs(root: Path, num_docs: int = 600, seed: int = 7) -> dict[str, Path]:
    """corpus/ (ingested), cooked/ (cook-stage shape), general.jsonl, tokenizer/."""
    rng = random.Random(seed)
    docs = [{"id": f"doc-{i}", "text": doc_text(rng, i)} for i in range(num_docs)]
    src = root / "docs.jsonl"
    src.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), "utf-8")
    ingest(IngestConfig(input=[str(src)], num_shards=3, progress=False), root / "corpus")

    # Cooked records: mostly one document each, every tenth a two-document chain.
    cooked, i = [], 0
    while i < num_docs - 1:
        lineage = [f"doc-{i}", f"doc-{i + 1}"] if i % 10 == 0 else [f"doc-{i}"]
        text = " ".join(docs[int(d.split("-")[1])]["text"] for d in lineage)
        qa = " ".join(f"Question: where is {d}? Answer: {rng.choice(WORDS)}." for d in lineage)
        cooked.append(
            {
                "id": f"cooked-{i}",
                "text": f"{text}\n{qa}",
                "source": "instruct",
                "lineage": lineage,
                "template": ["qa-plain-001"],
                "template_set": "test-1",
            }
        )
        i += len(lineage)
    cooked_dir = root / "cooked"
    infos = []
    for k in range(2):
        name = shard_name(k)
        count, sha = write_shard(cooked_dir / name, cooked[k::2])
        infos.append(ShardInfo(name, count, sha, (cooked_dir / name).stat().st_size))
    write_manifest(cooked_dir, Manifest("cook", "test", "test", "jsonl.zst", infos))

    general = [
        {
            "id": f"gen-{j}",
            "question": f"What does {rng.choice(WORDS)} mean in item {j}?",
            "response": " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 25))),
        }
        for j in range(800)
    ]
    gen = root / "general.jsonl"
    gen.write_text("".join(json.dumps(g) + "\n" for g in general), "utf-8")

    texts = [d["text"] for d in docs] + [c["text"] for c in cooked]
    tok = train_tokenizer(texts, root / "tokenizer", vocab_size=400, min_frequency=1)
    return {"corpus": root / "corpus", "cooked": cooked_dir, "general": gen, "tokenizer": tok}
