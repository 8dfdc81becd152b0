"""Untrusted files and names can do no harm: no unpickling, no remote code, no path escape,
no API key in any output."""

from __future__ import annotations

import ast
import os
import pickle
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from instructpt.core.manifest import MANIFEST_NAME, read_manifest
from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.errors import InputError
from instructpt.run_config import RunConfig
from instructpt.synth.config import HFEngineConfig
from instructpt.synth.engines.base import EngineError
from tests.conftest import REPO, run_cli, write_jsonl
from tests.synth.fault_server import FaultServer

SRC = REPO / "src" / "instructpt"
WORLD = ("--num-people", "30", "--num-cities", "6", "--num-companies", "6",
         "--num-universities", "3", "--num-countries", "2")  # fmt: skip


def _calls(name: str):
    """(file, line, call) for every call of an attribute or function `name` in src."""
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called == name:
                    yield path.relative_to(REPO), node.lineno, node


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return ast.literal_eval(kw.value) if isinstance(kw.value, ast.Constant) else kw.value
    return None


# --------------------------------------------------------------------------- no pickle


def test_no_module_unpickles_anything():
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not {"pickle", "cPickle", "dill", "joblib"} & set(names), (path, node.lineno)
    for where, line, call in _calls("load"):
        if isinstance(call.func, ast.Attribute) and getattr(call.func.value, "id", "") == "torch":
            assert _keyword(call, "weights_only") is True, f"{where}:{line} torch.load"
        if isinstance(call.func, ast.Attribute) and getattr(call.func.value, "id", "") == "np":
            # numpy's default has been allow_pickle=False since 1.16.3
            assert _keyword(call, "allow_pickle") is not True, f"{where}:{line} np.load"


def test_every_model_load_in_src_asks_for_safetensors_only():
    loads = [
        (where, line, call)
        for where, line, call in _calls("from_pretrained")
        if "Model" in ast.unparse(call.func.value) or "CausalLM" in ast.unparse(call.func.value)
    ]
    assert loads, "the scan found no model loads: it is looking in the wrong place"
    for where, line, call in loads:
        if _keyword(call, "trust_remote_code") is True:
            raise AssertionError(f"{where}:{line} turns on remote code unconditionally")
        if _keyword(call, "gguf_file") is not None:
            continue  # a GGUF file holds tensors and metadata only: nothing to unpickle
        assert _keyword(call, "use_safetensors") is True, f"{where}:{line} may unpickle a .bin"


def test_no_call_turns_on_remote_code_unconditionally():
    for name in ("from_pretrained", "load_dataset", "LLM", "HFEngine", "VLLMEngine"):
        for where, line, call in _calls(name):
            assert _keyword(call, "trust_remote_code") is not True, f"{where}:{line}"


def test_trust_remote_code_is_off_in_every_config_that_has_it():
    from pydantic import BaseModel

    import instructpt.cli  # noqa: F401  (imports every stage's config)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    with_field = [c for c in subclasses(BaseModel) if "trust_remote_code" in c.model_fields]
    assert len(with_field) >= 3, with_field  # synthesize, pretrain, evaluate at least
    for cls in with_field:
        assert cls.model_fields["trust_remote_code"].default is False, cls


class _Bomb:
    """Unpickling this creates the marker file: proof that something unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_model_folder_with_only_a_pickled_checkpoint_is_refused_unopened(tmp_path):
    from instructpt.synth.engines.hf import HFEngine
    from instructpt.synth.tiny import build_tiny_model

    model = build_tiny_model(tmp_path / "m", ["a b c d e f g"] * 20, hidden_size=16, num_layers=1)
    for f in model.glob("*.safetensors"):
        f.unlink()
    marker = tmp_path / "unpickled"
    (model / "pytorch_model.bin").write_bytes(pickle.dumps({"w": _Bomb(marker)}))
    with pytest.raises(EngineError, match="cannot load model"):
        HFEngine(str(model), None, HFEngineConfig(device="cpu"))
    assert not marker.exists()


# --------------------------------------------------------------------------- path escape


@pytest.mark.parametrize(
    "args",
    [
        ("mix", "--name", "../../escaped", "--recipe", "vanilla", "--tokenizer", "t"),
        ("mix", "--name", "/tmp/escaped", "--recipe", "vanilla", "--tokenizer", "t"),
        ("tokenize", "--variant", "../escaped"),
        ("pretrain", "--name", "../../escaped"),
        ("pretrain", "--variant", "a/../../escaped"),
        ("continue", "--name", "..", "--init-from", "x"),
        ("evaluate", "--variant", "../../escaped"),
        ("run", "--name", ".."),
        ("run", "--name", "../escaped"),
    ],
)
def test_names_that_become_folders_cannot_leave_the_run_directory(tmp_path, args):
    run_dir = ("--run-dir", "runs/r") if args[0] != "run" else ()
    res = run_cli(*args, *run_dir, cwd=tmp_path, check=False)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "not a plain folder name" in res.stderr and "Traceback" not in res.stderr
    assert not list(tmp_path.rglob("*escaped*"))


def test_a_run_name_from_a_config_file_is_checked_too():
    for name in ("..", ".", "../x", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="name"):
            RunConfig(name=name)
    assert RunConfig(name="demo-2.v1_x").name == "demo-2.v1_x"


def test_a_manifest_naming_a_shard_outside_its_folder_is_refused(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "one"}])
    ingest(IngestConfig(input=[str(path)], num_shards=1, progress=False), tmp_path / "corpus")
    manifest = tmp_path / "corpus" / MANIFEST_NAME
    data = orjson.loads(manifest.read_bytes())
    for bad in ("../../etc/passwd", "/etc/passwd", "a/../../x", "..\\x"):
        data["shards"][0]["file"] = bad
        manifest.write_bytes(orjson.dumps(data))
        with pytest.raises(InputError, match="outside its folder"):
            read_manifest(tmp_path / "corpus")


def test_record_ids_with_slashes_and_dots_stay_data_through_the_pipeline(tmp_path):
    """ids are never file names: every file the stages write lies inside the run dir."""
    run_cli("world", "--run-dir", "w", *WORLD, cwd=tmp_path)
    docs = [
        orjson.loads(x) for x in (tmp_path / "w/world/documents.jsonl").read_bytes().splitlines()
    ]
    evil = ["../../escaped", "/tmp/escaped-abs", "a/b/../../../escaped", "..", ".", "~", "C:\\x"]
    records = [{"id": evil[i % len(evil)] + f"-{i}" * (i >= len(evil)), "text": d["text"]}
               for i, d in enumerate(docs)]  # fmt: skip
    write_jsonl(tmp_path / "in.jsonl", records)
    (tmp_path / "inside").mkdir()
    before = set(tmp_path.rglob("*"))
    for step in (
        ("ingest", "../in.jsonl", "--num-shards", "2"),
        ("mine",),
        ("cook",),
        ("tokenizer", "train", "--vocab-size", "400"),
        ("mix", "--recipe", "instruct", "--tokenizer", "r/tokenizer"),
        ("tokenize", "--variant", "instruct", "--seq-len", "64"),
    ):
        run_cli(*step, "--run-dir", "r", cwd=tmp_path / "inside")
    new = set(tmp_path.rglob("*")) - before
    outside = [p for p in new if not p.is_relative_to(tmp_path / "inside" / "r")]
    assert not outside, outside
    assert not [p for p in new if "escaped" in p.name or p.name.startswith("~")]
    assert not list(Path("/tmp").glob("escaped*"))
    from instructpt.core.shards import read_shard

    kept = {d["id"] for s in (tmp_path / "inside/r/corpus").glob("shard-*") for d in read_shard(s)}
    assert kept == {r["id"] for r in records}


# --------------------------------------------------------------------------- API keys

SECRET = "sk-reliability-test-7f3a9c1e5b2d"


def test_the_api_key_reaches_the_server_and_no_output_file_or_log(tmp_path):
    from instructpt.synth.tiny import train_tokenizer

    train_tokenizer(["a b c d e f g h"] * 50).save_pretrained(tmp_path / "tok")
    docs = write_jsonl(
        tmp_path / "docs.jsonl", [{"id": f"d{i}", "text": f"text {i}"} for i in range(8)]
    )
    env = {**os.environ, "OPENAI_API_KEY": SECRET, "MY_KEY": SECRET}
    outputs: list[str] = []

    def cli(*args: str, ok: bool = True) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "instructpt.cli", *args], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        outputs.extend([proc.stdout, proc.stderr])
        assert (proc.returncode == 0) == ok, proc.stderr

    cli("ingest", str(docs), "--run-dir", "r", "--num-shards", "1", "--no-progress")
    with FaultServer(["500", "ok", "ok", "ok"], default="401") as server:
        common = ["synthesize", "--run-dir", "r", "--engine", "openai", "--model", "tiny",
                  "--tokenizer", "tok", "--openai-base-urls", server.url,
                  "--openai-backoff-base-s", "0.01", "--openai-max-retries", "1",
                  "--openai-concurrency", "1", "--no-progress"]  # fmt: skip
        cli(*common, ok=False)  # a 401 after three answers: fails, naming the key variable
        denied = server.auth_headers[:]
    assert "OPENAI_API_KEY" in outputs[-1]
    with FaultServer() as server:
        common[common.index("--openai-base-urls") + 1] = server.url
        cli(*common, "--openai-api-key-env", "MY_KEY")
        accepted = server.auth_headers[:]
    cli("cook", "--run-dir", "r", "--no-progress")
    cli("report", "--run-dir", "r")
    assert set(denied) == set(accepted) == {f"Bearer {SECRET}"}  # the key was really used

    files = [p for p in tmp_path.rglob("*") if p.is_file() and "tok" not in p.parts]
    assert any(p.name == "config.yaml" for p in files) and any(p.suffix == ".sqlite" for p in files)
    assert any(p.name == MANIFEST_NAME for p in files)
    leaked = [p for p in files if SECRET.encode() in _plain_bytes(p)]
    assert not leaked, leaked
    assert not any(SECRET in out for out in outputs)


def _plain_bytes(path: Path) -> bytes:
    """A file's bytes, decompressed when it is a zstd shard."""
    data = path.read_bytes()
    if path.name.endswith(".zst"):
        import zstandard

        data += zstandard.ZstdDecompressor().stream_reader(data).read()
    return data
