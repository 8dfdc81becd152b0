"""A real token stage from the demo world for training tests: world -> ingest -> tokenizer
-> mix (vanilla) -> tokenize, small enough to build in seconds on 2 cores."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.mix.config import MixConfig
from instructpt.mix.stage import mix
from instructpt.pack.config import TokenizeConfig, TokenizerTrainConfig
from instructpt.pack.tokenize import tokenize
from instructpt.pack.tokenizer import train_tokenizer_stage
from instructpt.run import generate_world
from instructpt.world.config import WorldConfig


def build_world_tokens(root: Path, num_people: int = 120, seq_len: int = 64) -> dict[str, Path]:
    world = root / "world"
    generate_world(WorldConfig(num_people=num_people, num_cities=12, num_companies=12), world)
    docs = root / "docs.jsonl"
    docs.write_bytes((world / "documents.jsonl").read_bytes())
    ingest(IngestConfig(input=[str(docs)], num_shards=2, progress=False), root / "corpus")
    tok = root / "tokenizer"
    train_tokenizer_stage(TokenizerTrainConfig(input=[str(root / "corpus")], vocab_size=512), tok)
    mix(
        MixConfig(tokenizer=str(tok), corpus=str(root / "corpus"), recipe="vanilla"),
        root / "mix",
    )
    tokenize(
        TokenizeConfig(tokenizer=str(tok), seq_len=seq_len, progress=False),
        root / "mix",
        root / "tokens",
    )
    index = orjson.loads((root / "tokens" / "index.json").read_bytes())
    assert index["num_sequences"] >= 64, index["num_sequences"]
    return {"world": world, "tokenizer": tok, "tokens": root / "tokens", "corpus": root / "corpus"}


@pytest.fixture(scope="session")
def world_tokens(tmp_path_factory) -> dict[str, Path]:
    return build_world_tokens(tmp_path_factory.mktemp("world-tokens"))
