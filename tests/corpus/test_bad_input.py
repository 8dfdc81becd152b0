"""Bad records are skipped, counted and quarantined with file and line; or stop the run."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from instructpt.core.shards import read_shard
from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.errors import InputError


def _write_mixed(path: Path) -> dict[int, str]:
    """A file whose bad lines are known by line number -> expected reason."""
    good = lambda i: json.dumps({"id": f"g{i}", "text": f"good text {i}"}).encode()  # noqa: E731
    lines: list[bytes] = []
    expected: dict[int, str] = {}

    def add(line: bytes, reason: str | None = None) -> None:
        lines.append(line)
        if reason:
            expected[len(lines)] = reason

    add(good(0))
    add(b'{"id": "b1", "text": "unterminated', "malformed_json")
    add(b'{"id": "b2", "text": "caf\xe9 latin-1"}', "invalid_utf8")
    add(good(1))
    add(b'{"id": "b3", "body": "no text field"}', "missing_text")
    add(b'{"id": "b4", "text": "   \\n\\t "}', "empty_text")
    add(b'{"id": "b5", "text": ""}', "empty_text")
    add(b'["a", "list"]', "not_an_object")
    add(b'{"id": "b6", "text": 42}', "text_not_string")
    add(b'{"id": {"nested": 1}, "text": "bad id type"}', "bad_id")
    add(b"")  # blank line: layout, not a record, not counted
    add(good(2))
    add(b'{"id": "b7", "text": "' + b"x" * 200 + b'"}', "too_long")
    add(b'{"id": "g0", "text": "same id again"}', "duplicate_id")
    add(b'{"id": "b8", "text": "nul \\u0000 inside is fine"}')
    path.write_bytes(b"\n".join(lines) + b"\n")
    return expected


def test_each_bad_case_is_quarantined_with_its_line_and_good_records_are_kept(tmp_path):
    path = tmp_path / "mixed.jsonl"
    expected = _write_mixed(path)
    cfg = IngestConfig(input=[str(path)], max_chars=100, num_shards=2, progress=False)
    result = ingest(cfg, tmp_path / "corpus")

    kept = {d["id"] for s in (tmp_path / "corpus").glob("shard-*") for d in read_shard(s)}
    assert kept == {"g0", "g1", "g2", "b8"}
    quarantine = [
        orjson.loads(x) for x in (tmp_path / "corpus/quarantine.jsonl").read_bytes().splitlines()
    ]
    assert {q["position"]: q["reason"] for q in quarantine} == expected
    for q in quarantine:
        assert q["location"] == f"{path} line {q['position']}"
        assert q["raw"]  # the offending input is kept: nothing is lost
    invalid = next(q for q in quarantine if q["reason"] == "invalid_utf8")
    assert "\\xe9" in invalid["raw"]

    stats = result.manifest.stats
    assert stats["read"] == 14
    assert stats["kept"] == 4
    assert sum(stats["skipped"].values()) == len(expected)
    assert stats["skipped"]["empty_text"] == 2


def test_on_error_fail_stops_at_the_first_bad_record_with_its_location(tmp_path):
    path = tmp_path / "mixed.jsonl"
    _write_mixed(path)
    cfg = IngestConfig(input=[str(path)], on_error="fail", progress=False)
    with pytest.raises(InputError, match=r"mixed\.jsonl line 2: malformed_json") as info:
        ingest(cfg, tmp_path / "corpus")
    assert "--on-error skip" in str(info.value)


def test_huge_line_is_quarantined_without_reading_it_whole(tmp_path):
    path = tmp_path / "huge.jsonl"
    big = b'{"id": "big", "text": "' + b"y" * 300_000 + b'"}'
    path.write_bytes(b'{"id": "a", "text": "small"}\n' + big + b'\n{"id": "b", "text": "after"}\n')
    cfg = IngestConfig(input=[str(path)], max_chars=1000, progress=False)
    ingest(cfg, tmp_path / "corpus")
    kept = {d["id"] for s in (tmp_path / "corpus").glob("shard-*") for d in read_shard(s)}
    assert kept == {"a", "b"}
    q = orjson.loads((tmp_path / "corpus/quarantine.jsonl").read_bytes())
    assert q["reason"] == "line_too_long" and q["position"] == 2
    assert len(q["raw"]) <= 1000


def test_byte_order_mark_and_crlf_line_endings_are_accepted(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(
        b'\xef\xbb\xbf{"id": "a", "text": "first"}\r\n{"id": "b", "text": "second"}\r\n'
    )
    result = ingest(IngestConfig(input=[str(path)], progress=False), tmp_path / "corpus")
    assert result.manifest.stats == {"read": 2, "kept": 2, "skipped": {}}


def test_invalid_utf8_txt_file_is_quarantined(tmp_path):
    folder = tmp_path / "txt"
    folder.mkdir()
    (folder / "ok.txt").write_text("fine", "utf-8")
    (folder / "bad.txt").write_bytes(b"\xff\xfe broken")
    result = ingest(IngestConfig(input=[str(folder)], progress=False), tmp_path / "corpus")
    assert result.manifest.stats["skipped"] == {"invalid_utf8": 1}
    q = orjson.loads((tmp_path / "corpus/quarantine.jsonl").read_bytes())
    assert q["location"] == str(folder / "bad.txt")
