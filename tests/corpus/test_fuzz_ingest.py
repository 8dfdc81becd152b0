"""Generated bad input never crashes ingest: good records all kept, bad ones quarantined."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from instructpt.core.shards import read_shard
from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest

good_text = st.text(min_size=1, max_size=200).filter(lambda t: not t.isspace())
tags = st.sampled_from(["<s>", "</s>", "<CON>", "</CON>", "<QUE>", "<ANS>", "</END>", "\x00"])
texts = st.one_of(good_text, st.builds(lambda a, t, b: a + t + b, good_text, tags, good_text))
garbage = st.one_of(
    st.binary(min_size=1, max_size=80).map(lambda b: b.replace(b"\n", b" ").replace(b"\r", b" ")),
    st.sampled_from([b"{", b'{"text": 5}', b"[]", b"null", b'{"id": "x"}', b'{"text": " "}']),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(
        st.one_of(texts.map(lambda t: ("good", t)), garbage.map(lambda g: ("bad", g))), max_size=30
    ),
    crlf=st.booleans(),
)
def test_any_mix_of_good_and_garbage_lines(lines, crlf):
    payload: list[bytes] = []
    good: dict[str, str] = {}
    bad = 0
    for i, (kind, value) in enumerate(lines):
        if kind == "good":
            payload.append(json.dumps({"id": f"g{i}", "text": value}).encode())
            good[f"g{i}"] = value
        else:
            assume(not _is_valid_document(value))
            payload.append(value)
            if not payload[:-1] and value.startswith(b"\xef\xbb\xbf"):
                value = value[3:]  # a leading byte order mark is not part of the data
            bad += bool(value.strip())  # a blank line is layout, not a record
    newline = b"\r\n" if crlf else b"\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.jsonl"
        path.write_bytes(newline.join(payload) + (newline if payload else b""))
        result = ingest(
            IngestConfig(input=[str(path)], num_shards=2, progress=False), Path(tmp) / "c"
        )
        kept = {
            d["id"]: d["text"] for s in (Path(tmp) / "c").glob("shard-*") for d in read_shard(s)
        }
        assert kept == good
        assert sum(result.manifest.stats["skipped"].values()) == bad
        qfile = Path(tmp) / "c" / "quarantine.jsonl"
        entries = [orjson.loads(x) for x in qfile.read_bytes().splitlines()] if bad else []
        assert len(entries) == bad
        assert all(e["location"].startswith(f"{path} line ") for e in entries)


def _is_valid_document(raw: bytes) -> bool:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return (
        isinstance(data, dict)
        and isinstance(data.get("text"), str)
        and not data["text"].isspace()
        and data["text"] != ""
    )
