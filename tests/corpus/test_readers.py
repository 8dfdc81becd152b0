"""Every reader format yields the same documents, with ids, text and locations."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from instructpt.core.shards import hashed_id, read_shard
from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.corpus.readers import discover_sources, iter_source
from instructpt.errors import InputError
from tests.conftest import write_jsonl


def _docs(out: Path) -> dict[str, dict]:
    docs = {}
    for shard in sorted(out.glob("shard-*.jsonl.zst")):
        for d in read_shard(shard):
            docs[d["id"]] = d
    return docs


def _ingest(tmp_path: Path, inputs: list[str], **kw) -> dict[str, dict]:
    cfg = IngestConfig(input=inputs, num_shards=3, progress=False, **kw)
    out = tmp_path / "corpus"
    ingest(cfg, out)
    return _docs(out)


def _expected(records: list[dict]) -> dict[str, str]:
    return {r["id"]: r["text"] for r in records}


def test_jsonl_plain_gz_and_zst_read_identically(tmp_path, records):
    lines = "".join(json.dumps(r) + "\n" for r in records).encode()
    (tmp_path / "a.jsonl").write_bytes(lines)
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(lines))
    # two zstd frames back to back: valid zstd, and what concatenating shards gives
    half = len(lines) // 2
    c = zstandard.ZstdCompressor()
    (tmp_path / "c.jsonl.zst").write_bytes(c.compress(lines[:half]) + c.compress(lines[half:]))
    for name in ("a.jsonl", "b.jsonl.gz", "c.jsonl.zst"):
        src = discover_sources([str(tmp_path / name)])[0]
        got = [r.data["text"] for r in iter_source(src)]
        assert got == [r["text"] for r in records], name


def test_jsonl_documents_keep_extra_fields_and_location(tmp_path, records):
    path = write_jsonl(tmp_path / "in.jsonl", records)
    docs = _ingest(tmp_path, [str(path)])
    assert {k: v["text"] for k, v in docs.items()} == _expected(records)
    d = docs["doc-3"]
    assert d["meta"]["lang"] == "en"
    assert d["meta"]["source"] == str(path)
    assert d["meta"]["line"] == 4


def test_parquet_with_several_row_groups(tmp_path, records):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(records), path, row_group_size=7)
    docs = _ingest(tmp_path, [str(path)], block_records=5)
    assert {k: v["text"] for k, v in docs.items()} == _expected(records)
    assert docs["doc-0"]["meta"]["row"] == 1


def test_parquet_resume_skip_crosses_row_groups(tmp_path, records):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(records), path, row_group_size=7)
    src = discover_sources([str(path)])[0]
    got = list(iter_source(src, skip=17))
    assert [r.data["id"] for r in got] == [r["id"] for r in records[17:]]
    assert got[0].position == 18


def test_txt_folder_one_file_one_document_with_hashed_ids(tmp_path):
    folder = tmp_path / "books"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("Alpha text.", "utf-8")
    (folder / "sub" / "b.txt").write_text("Beta text.", "utf-8")
    (folder / "ignored.md").write_text("not a txt", "utf-8")
    docs = _ingest(tmp_path, [str(folder)])
    assert sorted(d["text"] for d in docs.values()) == ["Alpha text.", "Beta text."]
    a_id = hashed_id(str(folder / "a.txt"), None)
    assert docs[a_id]["meta"]["source"] == str(folder / "a.txt")


def test_hf_save_to_disk_dataset_and_dataset_dict(tmp_path, records):
    import datasets

    ds = datasets.Dataset.from_list(records)
    ds.save_to_disk(str(tmp_path / "ds"))
    docs = _ingest(tmp_path, [str(tmp_path / "ds")])
    assert {k: v["text"] for k, v in docs.items()} == _expected(records)

    dd = datasets.DatasetDict({"train": ds.select(range(30)), "test": ds.select(range(30, 40))})
    dd.save_to_disk(str(tmp_path / "dd"))
    (tmp_path / "corpus").rename(tmp_path / "corpus_ds")
    docs = _ingest(tmp_path, [str(tmp_path / "dd")])
    assert {k: v["text"] for k, v in docs.items()} == _expected(records)
    assert docs["doc-35"]["meta"]["source"].endswith("dd[test]")


@pytest.mark.parametrize("fmt", ["hf-json", "hf-parquet"])
def test_files_through_the_datasets_library(tmp_path, records, fmt):
    if fmt == "hf-json":
        path = write_jsonl(tmp_path / "in.jsonl", records)
    else:
        path = tmp_path / "in.parquet"
        pq.write_table(pa.Table.from_pylist(records), path)
    docs = _ingest(tmp_path, [str(path)], format=fmt)
    assert {k: v["text"] for k, v in docs.items()} == _expected(records)


def test_custom_text_and_id_fields(tmp_path):
    path = write_jsonl(
        tmp_path / "in.jsonl", [{"key": 7, "content": "seven"}, {"key": "x", "content": "ex"}]
    )
    docs = _ingest(tmp_path, [str(path)], text_field="content", id_field="key")
    assert {k: v["text"] for k, v in docs.items()} == {"7": "seven", "x": "ex"}


def test_missing_id_field_falls_back_to_hash_of_source_and_line(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"text": "a"}, {"text": "b"}])
    docs = _ingest(tmp_path, [str(path)])
    assert set(docs) == {hashed_id(str(path), 1), hashed_id(str(path), 2)}


def test_glob_and_folder_inputs_are_read_in_sorted_order(tmp_path, records):
    folder = tmp_path / "parts"
    folder.mkdir()
    write_jsonl(folder / "b.jsonl", records[20:])
    write_jsonl(folder / "a.jsonl", records[:20])
    names = [s.name for s in discover_sources([str(folder / "*.jsonl")])]
    assert names == [str(folder / "a.jsonl"), str(folder / "b.jsonl")]
    assert [s.name for s in discover_sources([str(folder)])] == names


def test_unknown_extension_and_missing_path_give_clear_errors(tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(InputError, match="pass --format"):
        discover_sources([str(tmp_path / "data.csv")])
    with pytest.raises(InputError, match="not found"):
        discover_sources([str(tmp_path / "nope.jsonl")])
    with pytest.raises(InputError, match="matches no file"):
        discover_sources([str(tmp_path / "*.parquet")])
