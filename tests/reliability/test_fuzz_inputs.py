"""Generated bad corpus input: never a crash or a hang; bad records quarantined, good ones kept.

Each generated example is one corpus file (plain, .gz or .zst; LF or CRLF)
whose lines are each either a good document or one bad case of a known kind:
broken JSON, invalid UTF-8, raw NUL and control bytes, empty and too-long
texts, wrong types for the text, the id or the whole record, ids that are too
long or repeated, JSON nested past what a writer can serialise, lone
surrogates, garbage bytes. Good documents carry the hard content: the
synthesizer's format tags (`<s>`, `<CON>`, `</END>` ...), the cook templates'
`Q:`/`A:` markers, HTML `<pre>`, escaped NULs, ids with `/` and `..`, any
Unicode. The oracle is the generator's own label for each line: every good
record is kept with its exact text, every bad line is quarantined with
`file line N` and the reason its kind must give.

The default run generates a few hundred files (well over 1,000 bad records);
the slow run 1,000 files. Real 10 MB texts and a line longer than the
reader's line limit are fixed cases below, since generating them per example
would spend the time budget on memset.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from collections import Counter
from pathlib import Path

import orjson
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from instructpt.core.shards import read_shard
from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.errors import InputError
from instructpt.synth.format import _TAG_RE, context_prompt

MAX_CHARS = 300  # small, so "too long" texts are cheap to generate
FIGURES: Counter[str] = Counter()  # bad records generated, by kind (printed at the end)

MARKERS = ["<s>", "</s>", "<CON>", "</CON>", "<QUE>", "<ANS>", "</END>", "<pre>", "</pre>",
           "Q: ", "\nA: ", "\\u0000", "\x00", "\r", "\u2028", "\ufeff", "𝔘", "\u202e"]  # fmt: skip
plain = st.text(st.characters(codec="utf-8"), min_size=0, max_size=60)
good_text = st.builds(
    lambda a, m, b: a + m + b, plain, st.sampled_from(MARKERS) | st.just(""), plain
).filter(lambda t: t.strip() != "" and len(t) <= MAX_CHARS)
id_suffix = st.sampled_from(["", "/x", "/../../etc/passwd", "..", "a b", "é", "\\", "%2e%2e"])

# kind -> the reasons the ingest stage may give for it
BAD_KINDS = {
    "truncated_json": {"malformed_json", "invalid_utf8"},  # a cut may split a character
    "garbage": {"malformed_json", "invalid_utf8"},
    "invalid_utf8": {"invalid_utf8"},
    "raw_nul": {"malformed_json"},
    "lone_surrogate": {"malformed_json"},
    "empty_text": {"empty_text"},
    "text_wrong_type": {"text_not_string"},
    "text_null": {"missing_text"},
    "no_text_field": {"missing_text"},
    "not_an_object": {"not_an_object"},
    "id_wrong_type": {"bad_id"},
    "id_empty": {"bad_id"},
    "id_too_long": {"bad_id"},
    "too_long": {"too_long"},
    "duplicate_id": {"duplicate_id"},
    "too_deep": {"unserializable"},
}


def _bad_line(kind: str, n: int, data: st.DataObject, earlier_ids: list[str]) -> bytes:
    text = data.draw(good_text)
    if kind == "truncated_json":
        full = json.dumps({"id": f"t{n}", "text": text}).encode()
        return full[: data.draw(st.integers(1, len(full) - 1))]
    if kind == "garbage":
        junk = data.draw(st.binary(max_size=60)).replace(b"\n", b" ")
        return b"#" + junk  # '#' starts no JSON value
    if kind == "invalid_utf8":
        return b'{"id": "u%d", "text": "caf' % n + data.draw(
            st.sampled_from([b"\xe9", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])
        ) + b' au lait"}'  # fmt: skip
    if kind == "raw_nul":
        ctrl = data.draw(st.sampled_from([b"\x00", b"\x01", b"\x1f", b"\t"]))
        return b'{"id": "n%d", "text": "a' % n + ctrl + b'b"}'
    if kind == "lone_surrogate":
        return b'{"id": "s%d", "text": "x \\ud800 y"}' % n
    if kind == "empty_text":
        blank = data.draw(st.sampled_from(["", " ", "\n\t ", "\u3000", "\r\n"]))
        return json.dumps({"id": f"e{n}", "text": blank}).encode()
    if kind == "text_wrong_type":
        value = data.draw(st.sampled_from([5, 1.5, True, [text], {"t": text}]))
        return json.dumps({"id": f"w{n}", "text": value}).encode()
    if kind == "text_null":
        return json.dumps({"id": f"z{n}", "text": None}).encode()
    if kind == "no_text_field":
        return json.dumps({"id": f"f{n}", "body": text}).encode()
    if kind == "not_an_object":
        return data.draw(st.sampled_from([b"[]", b"null", b"42", b'"text"', b"[{}]", b"true"]))
    if kind == "id_wrong_type":
        value = data.draw(st.sampled_from([{"a": 1}, [1], 1.5, True, False]))
        return json.dumps({"id": value, "text": text}).encode()
    if kind == "id_empty":
        return json.dumps(
            {"id": data.draw(st.sampled_from(["", "  ", "\t"])), "text": text}
        ).encode()
    if kind == "id_too_long":
        return json.dumps({"id": "i" * 513, "text": text}).encode()
    if kind == "too_long":
        return json.dumps({"id": f"l{n}", "text": "x" * (MAX_CHARS + 1) + text}).encode()
    if kind == "duplicate_id":
        return json.dumps({"id": data.draw(st.sampled_from(earlier_ids)), "text": text}).encode()
    if kind == "too_deep":
        depth = data.draw(st.integers(260, 400))
        return b'{"id": "d%d", "text": "deep", "extra": ' % n + b"[" * depth + b"]" * depth + b"}"
    raise AssertionError(kind)


def _compress(payload: bytes, suffix: str) -> bytes:
    if suffix == ".gz":
        return gzip.compress(payload, mtime=0)
    if suffix == ".zst":
        return zstandard.ZstdCompressor().compress(payload)
    return payload


def check_generated_file(data: st.DataObject) -> None:
    num_lines = data.draw(st.integers(0, 24))
    suffix = data.draw(st.sampled_from(["", ".gz", ".zst"]))
    newline = data.draw(st.sampled_from([b"\n", b"\r\n"]))
    lines: list[bytes] = []
    good: dict[str, str] = {}
    kinds: dict[int, str] = {}  # line number -> kind of bad line
    for n in range(num_lines):
        kind = data.draw(st.sampled_from(["good", "good", *BAD_KINDS]))
        if kind == "duplicate_id" and not good:
            kind = "good"
        if kind == "good":
            doc_id = f"g{n}" + data.draw(id_suffix)
            text = data.draw(good_text)
            record = {"id": doc_id, "text": text, **data.draw(st.sampled_from([{}, {"x": 1}]))}
            lines.append(json.dumps(record, ensure_ascii=data.draw(st.booleans())).encode())
            good[doc_id] = text
        else:
            lines.append(_bad_line(kind, n, data, list(good)))
            kinds[n + 1] = kind
            FIGURES[kind] += 1
    if lines and data.draw(st.booleans()):
        blank = data.draw(st.integers(0, len(lines)))
        lines.insert(blank, b"")  # a blank line is layout: no record, but it counts as a line
        kinds = {k + (k - 1 >= blank): v for k, v in kinds.items()}
    expected = {k: BAD_KINDS[v] for k, v in kinds.items()}
    payload = newline.join(lines) + (newline if lines and data.draw(st.booleans()) else b"")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz.jsonl{suffix}"
        path.write_bytes(_compress(payload, suffix))
        cfg = IngestConfig(input=[str(path)], num_shards=2, max_chars=MAX_CHARS, progress=False)
        result = ingest(cfg, Path(tmp) / "c")
        kept = {
            d["id"]: d["text"] for s in (Path(tmp) / "c").glob("shard-*") for d in read_shard(s)
        }
        assert kept.keys() == good.keys(), (set(kept) ^ set(good), payload[:2000])
        for doc_id, text in good.items():
            assert kept[doc_id] == text, (doc_id, kept[doc_id], text)
        qfile = Path(tmp) / "c" / "quarantine.jsonl"
        entries = [orjson.loads(x) for x in qfile.read_bytes().splitlines()] if expected else []
        assert {e["position"] for e in entries} == set(expected)
        for e in entries:
            assert e["location"] == f"{path} line {e['position']}"
            assert e["reason"] in expected[e["position"]], (e, expected[e["position"]])
        assert result.manifest.stats["read"] == len(good) + len(expected)
        assert sum(result.manifest.stats["skipped"].values()) == len(expected)

        # on_error=fail stops at the first bad line with its location, and with nothing
        # else; a repeated id is not an error of the input line (it is always quarantined).
        failing = [k for k, kind in kinds.items() if kind != "duplicate_id"]
        if failing:
            fail = cfg.model_copy(update={"on_error": "fail"})
            with pytest.raises(InputError, match=rf"fuzz\.jsonl\S* line {min(failing)}: "):
                ingest(fail, Path(tmp) / "f")


@pytest.fixture(scope="module", autouse=True)
def _report_figures():
    yield
    print(f"\nfuzz: {sum(FIGURES.values())} bad records generated: {dict(FIGURES)}")


@pytest.mark.timeout(120)
@settings(
    max_examples=250,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_generated_bad_lines_are_quarantined_with_their_line_and_good_ones_kept(data):
    check_generated_file(data)


@pytest.mark.slow
@pytest.mark.timeout(900)
@settings(
    max_examples=1000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_a_thousand_generated_files_of_bad_lines(data):
    check_generated_file(data)


@settings(max_examples=300, deadline=None, database=None)
@given(text=good_text)
def test_format_tags_inside_a_text_never_reach_the_synthesizer_prompt_as_tags(text):
    # Exactly the three tags of the frame, whatever the text holds (DESIGN.md, format).
    assert [m.group(0) for m in _TAG_RE.finditer(context_prompt(text))] == [
        "<s>", "<CON>", "</CON>",
    ]  # fmt: skip


# --------------------------------------------------------------------------- fixed big cases


@pytest.mark.timeout(120)
def test_ten_megabyte_texts_are_kept_under_the_limit_and_quarantined_over_it(tmp_path):
    big = "word " * 2_000_000  # 10 MB
    path = tmp_path / "big.jsonl"
    path.write_bytes(
        orjson.dumps({"id": "big", "text": big}) + b"\n"
        + orjson.dumps({"id": "small", "text": "after the big one"}) + b"\n"
    )  # fmt: skip
    ingest(IngestConfig(input=[str(path)], max_chars=20_000_000, progress=False), tmp_path / "a")
    kept = {d["id"]: d["text"] for s in (tmp_path / "a").glob("shard-*") for d in read_shard(s)}
    assert kept == {"big": big, "small": "after the big one"}

    result = ingest(IngestConfig(input=[str(path)], progress=False), tmp_path / "b")  # 5M default
    assert result.manifest.stats["skipped"] == {"too_long": 1}
    q = orjson.loads((tmp_path / "b/quarantine.jsonl").read_bytes())
    assert q["location"] == f"{path} line 1" and q["reason"] == "too_long"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_line_past_the_line_limit_is_quarantined_without_holding_it(tmp_path):
    # The reader's line limit is max_chars * 4 + 4 KiB bytes; 1000 chars -> about 8 KiB,
    # so this is a 70 MB line that must be skipped in bounded pieces.
    path = tmp_path / "huge.jsonl"
    with open(path, "wb") as fh:
        fh.write(b'{"id": "a", "text": "before"}\n{"id": "huge", "text": "')
        for _ in range(70):
            fh.write(b"z" * (1 << 20))
        fh.write(b'"}\n{"id": "b", "text": "after"}\n')
    result = ingest(IngestConfig(input=[str(path)], max_chars=1000, progress=False), tmp_path / "c")
    assert result.manifest.stats["skipped"] == {"line_too_long": 1}
    kept = {d["id"] for s in (tmp_path / "c").glob("shard-*") for d in read_shard(s)}
    assert kept == {"a", "b"}


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_a_truncated_compressed_file_keeps_its_complete_lines_and_quarantines_the_cut(
    tmp_path, suffix
):
    lines = [orjson.dumps({"id": f"r{i}", "text": f"record {i} " * 8}) for i in range(20_000)]
    payload = b"\n".join(lines) + b"\n"
    path = tmp_path / f"cut.jsonl{suffix}"
    path.write_bytes(_compress(payload, suffix)[:-50])
    result = ingest(IngestConfig(input=[str(path)], progress=False), tmp_path / "c")
    stats = result.manifest.stats
    assert stats["skipped"] == {"unreadable_file": 1}
    q = orjson.loads((tmp_path / "c/quarantine.jsonl").read_bytes())
    assert q["location"] == f"{path} line {stats['read']}"
    kept = {d["id"] for s in (tmp_path / "c").glob("shard-*") for d in read_shard(s)}
    # every line before the cut is kept; what zstd had not finished a block of is lost
    assert kept == {f"r{i}" for i in range(stats["read"] - 1)}
    assert len(kept) > (19_000 if suffix == ".gz" else 10_000)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("garbage.jsonl.gz", b"not gzip at all"),
        ("garbage.jsonl.zst", b"not zstd either"),
        ("garbage.parquet", b"PAR1 but no footer"),
        ("empty.jsonl.gz", b""),
    ],
)
def test_a_file_that_is_not_what_its_name_says_is_quarantined_not_a_crash(tmp_path, name, content):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / name).write_bytes(content)
    (tmp_path / "in" / "ok.jsonl").write_bytes(b'{"id": "ok", "text": "fine"}\n')
    result = ingest(IngestConfig(input=[str(tmp_path / "in")], progress=False), tmp_path / "c")
    kept = {d["id"] for s in (tmp_path / "c").glob("shard-*") for d in read_shard(s)}
    assert kept == {"ok"}
    skipped = result.manifest.stats["skipped"]
    assert skipped == ({} if name.startswith("empty") else {"unreadable_file": 1})
