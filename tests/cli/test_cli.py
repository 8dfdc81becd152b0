"""The console command as a user meets it: help with examples, clear errors, `run`."""

from __future__ import annotations

import json

import orjson
import pytest
import yaml

from instructpt.run_config import RunConfig
from tests.conftest import REPO, run_cli, sample_records, write_jsonl

COMMANDS = [
    "world", "ingest", "train-synthesizer", "synthesize", "mine", "filter", "cook", "mix",
    "tokenize", "run", "plan", "sft", "magpie", "wiki-probe",
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_shows_an_example(command, tmp_path):
    out = run_cli(command, "--help", cwd=tmp_path).stdout
    assert "Example" in out and f"instructpt {command}" in out


def test_top_level_help_lists_the_stages(tmp_path):
    out = run_cli("--help", cwd=tmp_path).stdout
    for command in COMMANDS:
        assert command in out


def test_bad_config_is_one_clear_line_and_exit_2(tmp_path):
    (tmp_path / "c.yaml").write_text("input: [x.jsonl]\nnum_shards: -1\n")
    res = run_cli("ingest", "--config", "c.yaml", cwd=tmp_path, check=False)
    assert res.returncode == 2
    assert "num_shards" in res.stderr and "c.yaml" in res.stderr
    assert "Traceback" not in res.stderr


def test_ingest_writes_resolved_config_and_summary(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", sample_records(30))
    res = run_cli("ingest", "in.jsonl", "--run-dir", "r", "--num-shards", "3", cwd=tmp_path)
    assert "30 documents kept of 30 read into 3 shards" in res.stdout
    resolved = yaml.safe_load((tmp_path / "r/corpus/config.yaml").read_text())
    assert resolved["num_shards"] == 3 and resolved["input"] == ["in.jsonl"]


def test_demo_config_file_matches_the_run_defaults():
    shipped = RunConfig.model_validate(yaml.safe_load((REPO / "configs/demo.yaml").read_text()))
    default = RunConfig()
    assert (shipped.name, shipped.runs_root, shipped.world) == (
        default.name,
        default.runs_root,
        default.world,
    )
    assert shipped.ingest_config(["x"]) == default.ingest_config(["x"])


TINY_RUN = """\
name: tiny
world: {num_people: 40, num_cities: 6, num_companies: 6, num_universities: 3, num_countries: 2}
ingest: {num_shards: 2}
synthesizer: {max_steps: 4, num_eval_texts: 4, hidden_size: 32, num_layers: 1, num_heads: 2,
              num_kv_heads: 2, intermediate_size: 64, vocab_size: 400, seq_len: 256}
synthesize: {max_new_tokens: 24, num_rounds: 2}
tokenizer: {vocab_size: 500}
tokenize: {seq_len: 64}
pretrain: {model: {preset: tiny-llama}, micro_batch_size: 4, epochs: 1, num_threads: 1}
evaluate: {tasks: [world_probe_mc], limit: 20}
tune: {template: qa, seq_len: 64, micro_batch_size: 4, epochs: 1, num_threads: 1}
magpie: {num_queries: 8, max_query_tokens: 12, max_response_tokens: 8}
"""


def test_run_goes_from_world_to_the_report_with_equal_token_models(
    tmp_path,
):
    (tmp_path / "tiny.yaml").write_text(TINY_RUN)
    res = run_cli("run", "--config", "tiny.yaml", cwd=tmp_path)
    run_dir = tmp_path / "runs/tiny"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stages_run"] == [
        "world", "ingest", "train-synthesizer", "synthesize", "cook", "tokenizer", "mix",
        "tokenize", "pretrain", "evaluate", "tune", "magpie", "report",
    ]  # fmt: skip
    assert summary["not_run"] == [] and "not run" not in res.stdout
    page = run_dir / "report" / "report.html"
    assert f"report: {page.resolve()}" in res.stdout
    assert "world_probe_mc" in page.read_text()
    # the pre-training corpus holds augment + probe texts; only augment texts are synthesized
    groups = {
        json.loads(line)["id"]: json.loads(line)["meta"]["group"]
        for line in (run_dir / "world/documents.jsonl").read_text().splitlines()
    }
    synth = orjson.loads((run_dir / "synth/_manifest.json").read_bytes())
    corpus = orjson.loads((run_dir / "corpus/_manifest.json").read_bytes())
    assert synth["stats"]["texts"] == sum(g == "augment" for g in groups.values())
    assert corpus["stats"]["kept"] == sum(g in ("augment", "probe") for g in groups.values())
    # every variant holds every corpus document (raw or cooked) exactly once...
    from instructpt.core.shards import read_shard

    corpus_ids = {i for i, g in groups.items() if g in ("augment", "probe")}
    for v in ("vanilla", "mix", "instruct"):
        seen = [
            r["lineage"][0]
            for shard in sorted((run_dir / f"mix/{v}").glob("shard-*.jsonl.zst"))
            for r in read_shard(shard)
            if r["source"] != "general"
        ]
        assert sorted(seen) == sorted(corpus_ids), v
    # ... and the three models train the same steps on the same number of tokens
    trained = {
        v: orjson.loads((run_dir / f"models/{v}/_manifest.json").read_bytes())["stats"]
        for v in ("vanilla", "mix", "instruct")
    }
    assert len({(t["steps"], t["tokens"]) for t in trained.values()}) == 1
    for v in ("vanilla", "mix", "instruct"):
        ev = json.loads((run_dir / f"eval/{v}.json").read_text())
        acc = ev["results"]["world_probe_mc"]["metrics"]["acc"]
        assert 0 <= acc <= 1 and ev["results"]["world_probe_mc"]["num_samples"] == 20
        assert f"evaluate ({v}): world_probe_mc" in res.stdout
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["world"]["num_people"] == 40
    # every variant tuned with the same steps on the augment entities' questions only...
    tune_ids = [json.loads(line)["id"] for line in (run_dir / "inputs/tune.jsonl").open()]
    qa = [json.loads(line) for line in (run_dir / "world/qa.jsonl").open()]
    assert sorted(tune_ids) == sorted(
        f"tune-{q['id']}" for q in qa if q["group"] == "augment" and q["kind"] == "open"
    )
    tuned = {
        v: orjson.loads((run_dir / f"tuned/{v}/_manifest.json").read_bytes())["stats"]
        for v in ("vanilla", "mix", "instruct")
    }
    assert len({t["steps"] for t in tuned.values()}) == 1
    for v in ("vanilla", "mix", "instruct"):
        ev = json.loads((run_dir / f"eval/tuned/{v}.json").read_text())
        assert ev["results"]["world_probe_mc"]["num_samples"] == 20
        assert f"evaluate (tuned {v}): world_probe_mc" in res.stdout
    # ... and magpie asked the tuned instruct model, from its chat template's opening
    magpie = orjson.loads((run_dir / "magpie/_manifest.json").read_bytes())["stats"]
    assert magpie["queries_sampled"] == 8 and "Question:" in magpie["prefix"]
    report = json.loads((run_dir / "report/summary.json").read_text())
    assert set(report["tuning"]["variants"]) == {"vanilla", "mix", "instruct"}
    assert report["magpie"]["queries_sampled"] == 8
    assert 'id="tuning" data-state="done"' in page.read_text()

    again = run_cli("run", "--config", "tiny.yaml", cwd=tmp_path)
    assert "(reused)" in again.stdout and "already complete" in again.stdout


def test_run_until_stops_early_and_lists_the_rest(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY_RUN + "until: ingest\n")
    res = run_cli("run", "--config", "tiny.yaml", cwd=tmp_path)
    summary = json.loads((tmp_path / "runs/tiny/summary.json").read_text())
    assert summary["stages_run"] == ["world", "ingest"]
    assert "train-synthesizer" in summary["not_run"] and "not run" in res.stdout


def test_stage_commands_chain_from_world_to_packed_tokens(tmp_path):
    steps = [
        ("world", "--run-dir", "r", "--num-people", "30", "--num-cities", "6",
         "--num-companies", "6", "--num-universities", "3", "--num-countries", "2"),
        ("ingest", "r/world/documents.jsonl", "--run-dir", "r", "--num-shards", "2"),
        ("tokenizer", "train", "--run-dir", "r", "--vocab-size", "600"),
        ("mix", "--run-dir", "r", "--recipe", "vanilla", "--tokenizer", "r/tokenizer"),
        ("tokenize", "--run-dir", "r", "--variant", "vanilla", "--seq-len", "64"),
    ]  # fmt: skip
    for step in steps:
        run_cli(*step, cwd=tmp_path)
    from instructpt.pack.reader import PackedTokens

    packed = PackedTokens(tmp_path / "r/tokens/vanilla")
    stats = json.loads((tmp_path / "r/tokens/vanilla/stats.json").read_text())
    assert packed.num_sequences == stats["sequences"] > 0
    assert len(packed.sequence(0)) == 64


WORLD_FLAGS = ("--num-people", "30", "--num-cities", "6", "--num-companies", "6",
               "--num-universities", "3", "--num-countries", "2")  # fmt: skip


def test_mine_filter_cook_chain_and_synthesize_engine_miner_agree(tmp_path):
    """`mine` and `synthesize --engine miner` write the same records; filter feeds cook."""
    for run_dir in ("a", "b"):
        run_cli("world", "--run-dir", run_dir, *WORLD_FLAGS, cwd=tmp_path)
        run_cli("ingest", f"{run_dir}/world/documents.jsonl", "--run-dir", run_dir,
                "--num-shards", "2", cwd=tmp_path)  # fmt: skip
    out = run_cli("mine", "--run-dir", "a", "--num-workers", "2", cwd=tmp_path).stdout
    assert "mine:" in out and "by family" in out
    run_cli("synthesize", "--run-dir", "b", "--engine", "miner", cwd=tmp_path)
    from instructpt.core.shards import read_shard

    for shard in ("shard-00000.jsonl.zst", "shard-00001.jsonl.zst"):
        mined, synthesized = (
            [(r["id"], r["pairs"], r["engine"]) for r in read_shard(tmp_path / d / "synth" / shard)]
            for d in ("a", "b")
        )
        assert mined == synthesized and mined  # records differ only in meta (source path)
    manifest = json.loads((tmp_path / "a/synth/_manifest.json").read_text())
    assert manifest["stats"]["engine"]["name"] == "miner" and manifest["stats"]["pairs"] > 30

    out = run_cli("filter", "--run-dir", "a", cwd=tmp_path).stdout
    assert "filter: kept" in out
    kept = json.loads((tmp_path / "a/filtered/_manifest.json").read_text())["stats"]["pairs_kept"]
    run_cli("cook", "--run-dir", "a", "--input", "filtered", cwd=tmp_path)
    cooked = json.loads((tmp_path / "a/cooked/_manifest.json").read_text())["stats"]
    assert cooked["pairs_in"] == kept and cooked["pairs_rendered"] == kept


def test_synthesize_without_a_model_needs_the_miner(tmp_path):
    res = run_cli("synthesize", "--run-dir", "r", "--engine", "hf", cwd=tmp_path, check=False)
    assert res.returncode == 2 and "model is required" in res.stderr


def test_run_with_the_miner_and_the_filter_skips_the_synthesizer(tmp_path):
    (tmp_path / "m.yaml").write_text(
        TINY_RUN.replace(
            "synthesize: {max_new_tokens: 24, num_rounds: 2}",
            "synthesize: {engine: miner, miner: {num_workers: 1}}\nfilter: {}",
        )
        + "until: cook\n"
    )
    res = run_cli("run", "--config", "m.yaml", cwd=tmp_path)
    summary = json.loads((tmp_path / "runs/tiny/summary.json").read_text())
    assert summary["stages_run"][:5] == ["world", "ingest", "synthesize", "filter", "cook"]
    assert summary["skipped"] == ["train-synthesizer"]
    assert "train-synthesizer" not in summary["not_run"]
    assert not (tmp_path / "runs/tiny/models/synthesizer").exists()
    assert "mine:" in res.stdout and "filter: kept" in res.stdout


def test_evaluate_writes_the_probe_with_the_worlds_seed_as_run_does(tmp_path):
    from instructpt.evaluate import write_probe_tasks

    run_cli("world", "--run-dir", "r", "--seed", "7", *WORLD_FLAGS, cwd=tmp_path)
    # no model yet: the command stops after writing the tasks
    run_cli("evaluate", "--run-dir", "r", cwd=tmp_path, check=False)
    written = (tmp_path / "r/eval/tasks/world_probe_mc.test.jsonl").read_bytes()
    for seed, same in ((7, True), (0, False)):
        write_probe_tasks(tmp_path / "r/world", tmp_path / f"seed{seed}", seed=seed)
        assert (
            (tmp_path / f"seed{seed}/world_probe_mc.test.jsonl").read_bytes() == written
        ) is same


def test_progress_bars_print_plain_lines_into_a_log_file(monkeypatch):
    """Off a terminal a bar (ours with disable=None, lm-eval's with disable=False) writes
    plain lines, at most one per interval plus its last state; a terminal still gets the
    redrawn bar, and a bar switched off stays off."""
    import io

    import tqdm.std

    from instructpt.cli import bars_as_log_lines

    monkeypatch.setattr(tqdm.std.tqdm, "__init__", tqdm.std.tqdm.__init__)  # undone after

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    bars_as_log_lines(interval=3600.0)
    log, terminal, off = io.StringIO(), Terminal(), io.StringIO()
    for out in (log, terminal):
        for disable in (None, False):
            bar = tqdm.std.tqdm(range(500), disable=disable, file=out, desc="synth")
            for i in bar:
                bar.set_postfix(pairs=i)  # redraws at once on a terminal
    for _ in tqdm.std.tqdm(range(5), disable=True, file=off):
        pass
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 4  # start and end of each bar
    assert lines[0].startswith("synth:   0%") and "500/500" in lines[1]
    assert "\r" in terminal.getvalue() and off.getvalue() == ""
