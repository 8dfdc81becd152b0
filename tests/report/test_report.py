"""The report renders what the stages wrote: numbers, plots, escaped texts, and "not run" gaps.

`build_run` writes a small run directory in the stages' real formats (real
`Manifest`s and zstd shards, pretrain's metrics.jsonl, evaluate's JSON), with
numbers chosen so that every headline value is known in advance.
"""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path

import pytest

from instructpt.core.manifest import Manifest, ShardInfo, write_manifest
from instructpt.core.shards import shard_name, write_shard
from instructpt.errors import InputError
from instructpt.report import write_report

#: Every part `build_run` can write; leave some out to simulate stages not run.
PARTS = (
    "config",
    "world",
    "ingest",
    "synthesizer",
    "synthesize",
    "cook",
    "tokenizer",
    "mix",
    "tokenize",
    "pretrain",
    "evaluate",
    "tune",
    "magpie",
)
VARIANTS = ("vanilla", "mix", "instruct")
EVIL = "<script>alert(1)</script>"
#: world_probe_mc acc and its stderr per variant: instruct - vanilla = +22 points, - mix = +12.
PROBE = {"vanilla": (0.40, 0.03), "mix": (0.50, 0.04), "instruct": (0.62, 0.05)}
#: world_probe_mc acc after tuning: vanilla gains 5 points, mix 4, instruct 10
#: (instruct gains 5 points more than vanilla).
TUNED = {"vanilla": (0.45, 0.03), "mix": (0.54, 0.04), "instruct": (0.72, 0.04)}
MAGPIE_STATS = {
    "queries_sampled": 10,
    "queries_ended": 9,
    "queries_kept": 8,
    "records": 7,
    "well_formed_share": 0.7,
    "query_well_formed_share": 0.8,
    "question_mark_records": 7,
    "dropped": {"query_unfinished": 1, "too_short": 1, "response_repetitive": 1},
    "template": "auto",
    "prefix": "<s>Question: ",
}
MAGPIE_RECORDS = [
    {"id": f"magpie-{i}", "instruction": f"Where was Ada Quill born? {EVIL}", "input": "",
     "output": "Tethorpe"}
    for i in range(7)
]  # fmt: skip
#: Tokens per source of each mix (equal budgets, as the mix stage writes them).
MIX_TOKENS = {
    "vanilla": {"raw": 6000},
    "mix": {"raw": 4800, "general": 1200},
    "instruct": {"raw": 1500, "instruct": 4500},
}
#: Figures of a full run: pairs histogram, token mix, loss curves, evaluation bars.
FULL_FIGURES = {"pairs", "mix", "loss", "eval"}

RAW_TEXTS = {
    "person-0001": f"Ada Quill is a weaver who writes {EVIL} in her notes & more.",
    "person-0002": "Bo Lark is a miller. Bo Lark lives in Tethorpe.",
    "city-0001": "Tethorpe is a city in Buxestan.",
}
COOKED = [
    {
        "id": "person-0001",
        "text": RAW_TEXTS["person-0001"] + f"\n\nQuestion: What does Ada write?\nAnswer: {EVIL}",
        "source": "instruct",
        "lineage": ["person-0001"],
        "template": ["rc.001", "qa.002"],
        "template_set": "instructpt-templates/1",
    },
    {
        "id": "city-0001",
        "text": "User: Please read.\n\n"
        + RAW_TEXTS["person-0002"]
        + "\n\n"
        + RAW_TEXTS["city-0001"]
        + "\n\nAssistant: Where does Bo Lark live?\nTethorpe",
        "source": "instruct",
        "lineage": ["person-0002", "city-0001"],
        "template": ["dlg.003", "chain.001", "qa.004"],
        "template_set": "instructpt-templates/1",
    },
    {
        "id": "person-0009",
        "text": "A raw text whose pairs were all dropped.",
        "source": "raw",
        "lineage": ["person-0009"],
        "template": [],
        "template_set": "instructpt-templates/1",
    },
]


def _manifest(folder: Path, stage: str, stats: dict, records: list[dict] | None = None) -> None:
    """A finished stage folder: its shard (when given) and its manifest, written last."""
    shards = []
    if records is not None:
        count, sha = write_shard(folder / shard_name(0), records)
        shards.append(ShardInfo(shard_name(0), count, sha, (folder / shard_name(0)).stat().st_size))
    write_manifest(folder, Manifest(stage, "cfghash", "input", "jsonl.zst", shards, stats))


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), "utf-8")


def _eval_json(variant: str, acc: float, stderr: float | str) -> dict:
    """What `instructpt.evaluate.harness.evaluate` writes (the keys the report reads, and more)."""
    return {
        "model": f"runs/demo/models/{variant}/model",
        "lm_eval_version": "0.4.13",
        "bos_added": True,
        "results": {
            "world_probe_mc": {
                "metrics": {"acc": acc, "acc_norm": acc - 0.02},
                "stderr": {"acc": stderr, "acc_norm": stderr},
                "filters": ["none"],
                "num_fewshot": 0,
                "num_samples": 200,
                "num_items": 200,
                "version": 1.0,
                "higher_is_better": {"acc": True, "acc_norm": True},
                "is_group": False,
            }
        },
        "config": {"model": "x", "tasks": ["world_probe_mc"], "limit": None},
        "seconds": 3.5,
        "runs": [],
    }


def build_run(root: Path, parts: tuple[str, ...] = PARTS, name: str = "demo") -> Path:
    run = root / "runs" / name
    run.mkdir(parents=True)
    if "config" in parts:
        (run / "config.yaml").write_text(
            f"name: {name}\nruns_root: runs\nuntil: evaluate\n# a comment with <b>markup</b>\n"
            "pretrain:\n  model:\n    preset: demo-mistral\n",
            "utf-8",
        )
    if "world" in parts:
        stats = {"documents": 40, "words": 2400, "qa": 800, "group.augment": 20}
        stats |= {"group.probe": 8, "group.synth_train": 12}
        _manifest(run / "world", "world", stats)
    if "ingest" in parts:
        docs = [{"id": i, "text": t, "meta": {"group": "augment"}} for i, t in RAW_TEXTS.items()]
        _manifest(run / "corpus", "ingest", {"read": 30, "kept": 28, "skipped": {"empty": 2}}, docs)
        _manifest(run / "corpus-augment", "ingest", {"read": 20, "kept": 20, "skipped": {}}, docs)
    if "synthesizer" in parts:
        _write_json(
            run / "models" / "synthesizer" / "synthesizer_metrics.json",
            {
                "num_parameters": 98304,
                "train": {"steps": 120, "first_loss": 6.5, "last_loss": 1.25},
                "eval": {
                    "texts": 10,
                    "parse_yield": 0.9,
                    "pairs": 27,
                    "pairs_per_text": 2.7,
                    "correct_fraction": 0.41,
                    "question_matched_fraction": 0.8,
                    "answer_f1": 0.55,
                },
            },
        )
    if "synthesize" in parts:
        _manifest(
            run / "synth",
            "synthesize",
            {
                "texts": 20,
                "pairs": 50,
                "pairs_per_text": 2.5,
                "parse_yield": 0.9,
                "pairs_per_text_histogram": {"0": 2, "2": 8, "3": 6, "4": 4},
                "pieces": 64,
                "dropped": {"truncated": 9, "duplicate_question": 4, "empty_answer": 1},
                "prompt_tokens": 5000,
                "completion_tokens": 3000,
                "linked": 10,
                "linked_fraction": 0.5,
                "engine": {"name": "hf", "model": "runs/demo/models/synthesizer"},
            },
        )
    if "cook" in parts:
        stats = {"read": 20, "written": 12, "outputs_instruct": 11, "outputs_raw": 1}
        stats |= {"chains": 8, "chained_texts": 16, "pairs_in": 50, "pairs_rendered": 47}
        stats |= {"dropped_mc_answer_not_in_options": 3}
        _manifest(run / "cooked", "cook", stats, COOKED)
    if "tokenizer" in parts:
        (run / "tokenizer").mkdir()
        (run / "tokenizer" / "tokenizer.json").write_text("{}", "utf-8")
    for variant in VARIANTS:
        by_source = MIX_TOKENS[variant]
        if "mix" in parts:
            stats = {"recipe": variant, "documents": 28, "tokens": sum(by_source.values())}
            stats |= {f"tokens_{s}": n for s, n in by_source.items()}
            stats |= {"records": 30}
            if variant == "instruct":
                stats["augmented_doc_fraction"] = 0.714286
            _manifest(run / "mix" / variant, "mix", stats)
        if "tokenize" in parts:
            stats = {"records": 30, "tokens": 6000, "sequences": 23, "tail_tokens": 112}
            _manifest(run / "tokens" / variant, "tokenize", stats)
        if "pretrain" in parts:
            model_dir = run / "models" / variant
            final = {"vanilla": 4.0, "mix": 3.9, "instruct": 3.1}[variant]
            rows = [
                {
                    "step": s,
                    "loss": 8.0 - (8.0 - final) * s / 10,
                    "lr": 1e-3,
                    "grad_norm": 1.0,
                    "tokens": 1024 * s,
                    "tokens_per_s": 2048.0,
                    "elapsed_s": 0.5 * s,
                }
                for s in range(1, 11)
            ]
            model_dir.mkdir(parents=True)
            (model_dir / "metrics.jsonl").write_text(
                "".join(json.dumps(r) + "\n" for r in rows), "utf-8"
            )
            stats = {"parameters": 123456, "steps": 10, "tokens": 10240, "seq_len": 256}
            stats |= {"first_loss": rows[0]["loss"], "last_loss": final, "tokens_per_s": 2048.0}
            stats |= {"seconds": 5.0, "device": "cpu"}
            _manifest(model_dir, "pretrain", stats)
        if "evaluate" in parts:
            acc, stderr = PROBE[variant]
            _write_json(run / "eval" / f"{variant}.json", _eval_json(variant, acc, stderr))
        if "tune" in parts:
            stats = {"records": 40, "examples": 40, "steps": 20, "dropped": {}}
            _manifest(run / "tuned" / variant, "sft", stats)
            acc, stderr = TUNED[variant]
            _write_json(
                run / "eval" / "tuned" / f"{variant}.json", _eval_json(variant, acc, stderr)
            )
    if "magpie" in parts:
        _manifest(run / "magpie", "magpie", MAGPIE_STATS, MAGPIE_RECORDS)
    if "evaluate" in parts:
        items = [{"question": "q", "choices": ["a", "b", "c", "d"], "gold": 0}] * 3
        (run / "eval" / "tasks").mkdir()
        (run / "eval" / "tasks" / "world_probe_mc.test.jsonl").write_text(
            "".join(json.dumps(i) + "\n" for i in items), "utf-8"
        )
    return run


class PageParser(HTMLParser):
    """Sections with their data-state, figures, svgs, tags and every URL-like attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, str] = {}
        self.figures: list[str] = []
        self.svgs = 0
        self.tags: set[str] = set()
        self.urls: list[str] = []
        self.meta_csp: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self.sections[a["id"] or ""] = a.get("data-state") or ""
        if tag == "figure":
            self.figures.append(a.get("data-figure") or "")
        if tag == "svg":
            self.svgs += 1
        if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy":
            self.meta_csp = a.get("content")
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "xlink:href", "action")]


def parse(page: Path) -> PageParser:
    parser = PageParser()
    parser.feed(page.read_text("utf-8"))
    return parser


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> tuple[Path, Path]:
    """A finished run and its report (rendered once for the module)."""
    run = build_run(tmp_path_factory.mktemp("full"))
    return run, write_report(run)


def summary_of(page: Path) -> dict:
    return json.loads((page.parent / "summary.json").read_text("utf-8"))


# --------------------------------------------------------------------------- a full run


def test_report_and_summary_go_to_run_dir_report_by_default(full) -> None:
    run, page = full
    assert page == run / "report" / "report.html"
    assert (run / "report" / "summary.json").is_file()
    assert not list((run / "report").glob(".*.tmp"))


def test_headline_is_instruct_minus_vanilla_and_mix_in_points(full) -> None:
    _, page = full
    head = summary_of(page)["headline"]
    assert head["task"] == "world_probe_mc" and head["metric"] == "acc"
    assert head["instruct_minus_vanilla_points"] == pytest.approx(22.0)
    assert head["instruct_minus_mix_points"] == pytest.approx(12.0)
    assert head["instruct_minus_vanilla_stderr_points"] == pytest.approx(
        round(100 * math.hypot(0.05, 0.03), 2)
    )
    assert head["scores"]["mix"] == {"value": 0.5, "stderr": 0.04}
    assert head["chance"] == 0.25
    html = page.read_text("utf-8")
    assert "+22.0 points" in html and "+12.0 points" in html
    assert "62.0%" in html and "40.0%" in html
    assert "25.0%" in html  # chance: four options per item in the task file


def test_pipeline_numbers_come_from_the_stage_stats(full) -> None:
    _, page = full
    s = summary_of(page)
    pipe = s["pipeline"]
    assert pipe["documents"] == {"corpus": 28, "corpus-augment": 20}
    assert pipe["synthesize"]["pairs_per_text"] == 2.5
    assert pipe["synthesize"]["parse_yield"] == 0.9
    assert pipe["synthesize"]["dropped"] == {
        "truncated": 9,
        "duplicate_question": 4,
        "empty_answer": 1,
    }
    assert pipe["synthesizer_heldout"]["correct_fraction"] == 0.41
    assert pipe["mix"]["mix"]["tokens_by_source"] == {"general": 1200, "raw": 4800}
    assert pipe["mix"]["instruct"]["tokens_by_source"] == {"instruct": 4500, "raw": 1500}
    assert s["training"]["instruct"]["last_loss"] == 3.1
    assert s["evaluation"]["vanilla"]["world_probe_mc"]["acc"] == {"value": 0.4, "stderr": 0.03}
    assert set(s["stages"].values()) == {"done"}
    html = page.read_text("utf-8")
    for shown in (
        "2.50",  # pairs per text
        "90.0%",  # parse yield
        "truncated",
        "14.1%",  # 9 truncated of 64 pieces
        "4,500 (75%)",  # instruct tokens of the instruct mix
        "1,200 (20%)",  # general tokens of the mix control
        "71.4%",  # documents augmented
        "mc_answer_not_in_options",  # a cook drop reason
        "4.000",  # vanilla's last loss
        "The variants hold equal tokens (within 0.00%).",
    ):
        assert shown in html, shown


def test_every_section_and_figure_is_there(full) -> None:
    _, page = full
    parsed = parse(page)
    for section in ("headline", "pipeline", "training", "evaluation", "examples", "config"):
        assert parsed.sections[section] == "done", section
    assert parsed.sections["tuning"] == "done" and parsed.sections["magpie"] == "done"
    assert set(parsed.figures) == FULL_FIGURES and len(parsed.figures) == len(FULL_FIGURES)
    assert parsed.svgs == len(FULL_FIGURES)
    assert 'class="not-run"' not in page.read_text("utf-8")


def test_tuning_section_compares_what_tuning_added_to_each_variant(full) -> None:
    _, page = full
    tune = summary_of(page)["tuning"]
    assert tune["task"] == "world_probe_mc" and tune["metric"] == "acc"
    assert tune["variants"]["vanilla"]["gain_points"] == 5.0
    assert tune["variants"]["instruct"]["gain_points"] == 10.0
    assert tune["variants"]["instruct"]["gain_stderr_points"] == round(
        100 * math.hypot(0.04, 0.05), 2
    )
    assert tune["instruct_gain_minus_vanilla_gain_points"] == 5.0
    assert tune["instruct_gain_minus_mix_gain_points"] == 6.0
    html = page.read_text("utf-8")
    tuning = html[html.index('id="tuning"') : html.index('id="magpie"')]
    assert "+5.0 points" in tuning and "72.0%" in tuning and "+10.0 ±" in tuning
    # 5 points against a stderr of the difference of ~8.7: the page does not claim it
    assert "gained 5.0 points more than vanilla, within one standard error" in tuning


def test_magpie_section_shows_counts_share_and_escaped_records(full) -> None:
    _, page = full
    assert summary_of(page)["magpie"]["well_formed_share"] == 0.7
    html = page.read_text("utf-8")
    magpie = html[html.index('id="magpie"') :]
    magpie = magpie[: magpie.index("</section>")]
    assert "70.0%" in magpie and "query_unfinished" in magpie
    assert "&lt;s&gt;Question: " in magpie
    assert magpie.count("Where was Ada Quill born?") == 6  # the first NUM_MAGPIE_RECORDS
    assert EVIL not in magpie


def test_tune_left_out_by_the_config_is_skipped_not_missing(tmp_path) -> None:
    run = build_run(tmp_path, parts=tuple(p for p in PARTS if p not in ("tune", "magpie")))
    with (run / "config.yaml").open("a") as fh:
        fh.write("tune: null\n")
    page = write_report(run, tmp_path / "out")
    parsed = parse(page)
    assert parsed.sections["tuning"] == "skipped" and parsed.sections["magpie"] == "skipped"
    s = summary_of(page)
    assert s["stages"]["tune"] == s["stages"]["magpie"] == "skipped: not configured"
    assert s["tuning"] is None and s["magpie"] is None


def test_cooked_examples_show_raw_and_cooked_text_escaped(full) -> None:
    _, page = full
    html = page.read_text("utf-8")
    assert EVIL not in html
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "writes &lt;script&gt;alert(1)&lt;/script&gt; in her notes &amp; more." in html
    # the linked example: both raw texts of its lineage, in order, beside the cooked text
    linked = html[html.index('data-example="city-0001"') :]
    assert linked.index("raw <code>person-0002") < linked.index("raw <code>city-0001")
    assert "Bo Lark lives in Tethorpe." in linked and "Tethorpe is a city in Buxestan." in linked
    assert 'data-example="person-0009"' not in html  # a raw output is not an example


def test_config_is_shown_escaped(full) -> None:
    _, page = full
    html = page.read_text("utf-8")
    assert "# a comment with &lt;b&gt;markup&lt;/b&gt;" in html
    assert "preset: demo-mistral" in html


def test_page_loads_nothing_from_outside_and_runs_no_script(full) -> None:
    _, page = full
    parsed = parse(page)
    assert parsed.meta_csp is not None and "default-src 'none'" in parsed.meta_csp
    assert "script" not in parsed.tags and "link" not in parsed.tags and "img" not in parsed.tags
    assert all(u.startswith("#") for u in parsed.urls), [u for u in parsed.urls if u[:1] != "#"]


def test_same_run_gives_byte_identical_report(full, tmp_path) -> None:
    run, page = full
    again = write_report(run, tmp_path / "again")
    assert again.read_bytes() == page.read_bytes()
    assert (tmp_path / "again" / "summary.json").read_bytes() == (
        page.parent / "summary.json"
    ).read_bytes()


# --------------------------------------------------------------------------- stages not run


def test_run_with_only_a_config_says_not_run_everywhere(tmp_path) -> None:
    run = build_run(tmp_path, parts=("config",))
    page = write_report(run, tmp_path / "out")
    parsed = parse(page)
    for section in ("headline", "training", "evaluation", "examples"):
        assert parsed.sections[section] == "not-run", section
    assert parsed.sections["config"] == "done"
    assert parsed.svgs == 0
    html = page.read_text("utf-8")
    assert html.count("not run") >= 8
    s = summary_of(page)
    assert s["headline"] is None
    assert set(s["stages"].values()) == {"not run"}
    assert s["pipeline"]["synthesize"] is None and s["pipeline"]["cook"] is None
    assert s["pipeline"]["documents"] == {"corpus": None, "corpus-augment": None}
    assert s["training"] == {"vanilla": None, "mix": None, "instruct": None}
    assert s["evaluation"] == {"vanilla": None, "mix": None, "instruct": None}


def test_empty_run_dir_still_gets_a_report(tmp_path) -> None:
    run = tmp_path / "runs" / "empty"
    run.mkdir(parents=True)
    page = write_report(run)
    assert parse(page).sections["config"] == "not-run"
    assert summary_of(page)["run"] == "empty"


def test_run_stopped_after_mix_shows_pipeline_but_no_training_or_scores(tmp_path) -> None:
    parts = ("config", "world", "ingest", "synthesizer", "synthesize", "cook", "tokenizer", "mix")
    page = write_report(build_run(tmp_path, parts=parts))
    parsed = parse(page)
    assert parsed.sections["pipeline"] == "done"
    assert parsed.sections["training"] == "not-run"
    assert parsed.sections["evaluation"] == "not-run"
    assert set(parsed.figures) == {"pairs", "mix"}
    s = summary_of(page)
    assert s["stages"]["mix"] == "done" and s["stages"]["pretrain"] == "not run"
    assert s["stages"]["tokenize"] == "not run"
    assert s["headline"] is None
    assert "sequences (tokenize)" in page.read_text("utf-8")


def test_a_variant_not_evaluated_leaves_its_gap_empty_not_zero(tmp_path) -> None:
    run = build_run(tmp_path, parts=("config", "evaluate"))
    (run / "eval" / "mix.json").unlink()
    page = write_report(run)
    head = summary_of(page)["headline"]
    assert head["instruct_minus_vanilla_points"] == pytest.approx(22.0)
    assert head["instruct_minus_mix_points"] is None
    assert head["instruct_minus_mix_stderr_points"] is None
    assert "mix" not in head["scores"]
    assert summary_of(page)["stages"]["evaluate"] == "partial: vanilla, instruct"
    assert parse(page).sections["evaluation"] == "partial"
    card = page.read_text("utf-8").split('data-gap="instruct-minus-mix"')[1][:300]
    assert "not run" in card


def test_training_still_running_shows_its_curve_as_in_progress(tmp_path) -> None:
    run = build_run(tmp_path, parts=("config", "pretrain"))
    (run / "models" / "instruct" / "_manifest.json").unlink()
    page = write_report(run)
    assert summary_of(page)["training"]["instruct"] is None
    assert summary_of(page)["stages"]["pretrain"] == "partial: vanilla, mix"
    assert "in progress" in page.read_text("utf-8")
    assert "loss" in parse(page).figures


def test_stderr_lm_eval_could_not_compute_is_missing_not_zero(tmp_path) -> None:
    run = build_run(tmp_path, parts=("config", "evaluate"))
    _write_json(run / "eval" / "vanilla.json", _eval_json("vanilla", 0.40, "N/A"))
    head = summary_of(write_report(run))["headline"]
    assert head["scores"]["vanilla"] == {"value": 0.4, "stderr": None}
    assert head["instruct_minus_vanilla_points"] == pytest.approx(22.0)
    assert head["instruct_minus_vanilla_stderr_points"] is None


def test_unreadable_stage_file_is_listed_as_a_problem_not_a_crash(tmp_path) -> None:
    run = build_run(tmp_path, parts=("config", "synthesize", "evaluate"))
    (run / "eval" / "instruct.json").write_text("{ half a file", "utf-8")
    (run / "synth" / "_manifest.json").write_text("not json", "utf-8")
    page = write_report(run)
    s = summary_of(page)
    assert s["headline"]["instruct_minus_vanilla_points"] is None
    assert s["pipeline"]["synthesize"] is None
    assert len(s["problems"]) == 2
    assert "problems" in parse(page).sections
    assert "instruct.json" in page.read_text("utf-8")


def test_missing_run_dir_is_an_input_error(tmp_path) -> None:
    with pytest.raises(InputError, match="run directory not found"):
        write_report(tmp_path / "nope")


def test_unequal_token_budgets_are_called_out(tmp_path) -> None:
    run = build_run(tmp_path, parts=("config", "mix"))
    stats = json.loads((run / "mix" / "instruct" / "_manifest.json").read_text("utf-8"))
    stats["stats"]["tokens"] = 7500  # 25% more than vanilla's 6000
    (run / "mix" / "instruct" / "_manifest.json").write_text(json.dumps(stats), "utf-8")
    html = write_report(run).read_text("utf-8")
    assert "differ in size by up to 20.0% of their tokens" in html


# --------------------------------------------------------------------------- generative recall

#: world_probe_gen exact match zero- and three-shot, and MC acc per attribute, per variant.
RECALL = {"vanilla": (0.05, 0.10), "mix": (0.15, 0.20), "instruct": (0.40, 0.45)}
MC_BY_ATTRIBUTE = {"vanilla": (0.30, 0.50), "mix": (0.40, 0.60), "instruct": (0.50, 0.74)}


def _recall_json(variant: str) -> dict:
    """An evaluate result holding all three probe tasks, with per-attribute scores."""
    data = _eval_json(variant, *PROBE[variant])
    zero, three = RECALL[variant]
    city, year = MC_BY_ATTRIBUTE[variant]
    data["results"]["world_probe_mc"]["by_attribute"] = {
        "birth_city": {"metrics": {"acc": city, "acc_norm": city}, "num_samples": 100},
        "birth_year": {"metrics": {"acc": year, "acc_norm": year}, "num_samples": 100},
    }
    for task, value, shots in (("world_probe_gen", zero, 0), ("world_probe_gen_3shot", three, 3)):
        data["results"][task] = {
            "metrics": {"exact_match": value},
            "stderr": {"exact_match": 0.02},
            "filters": ["first_line"],
            "num_fewshot": shots,
            "num_samples": 100,
            "num_items": 100,
            "version": 2.0,
            "by_attribute": {
                "birth_city": {"metrics": {"exact_match": value / 2}, "num_samples": 50},
                "birth_year": {"metrics": {"exact_match": value * 1.5}, "num_samples": 50},
            },
        }
    return data


@pytest.fixture(scope="module")
def recall(tmp_path_factory) -> tuple[Path, Path]:
    run = build_run(tmp_path_factory.mktemp("recall"), tuple(p for p in PARTS if p != "tune"))
    for variant in VARIANTS:
        _write_json(run / "eval" / f"{variant}.json", _recall_json(variant))
    # multiple choice: birth_city items have 4 options (chance 1/4), birth_year 2 (chance 1/2)
    items = [{"attribute": "birth_city", "choices": ["a", "b", "c", "d"], "gold": 0}] * 2
    items += [{"attribute": "birth_year", "choices": ["1990", "1991"], "gold": 1}] * 2
    (run / "eval" / "tasks" / "world_probe_mc.test.jsonl").write_text(
        "".join(json.dumps(i) + "\n" for i in items), "utf-8"
    )
    return run, write_report(run)


def test_generative_recall_is_the_headline_when_evaluated(recall) -> None:
    _, page = recall
    head = summary_of(page)["headline"]
    assert head["task"] == "world_probe_gen" and head["metric"] == "exact_match"
    assert head["instruct_minus_vanilla_points"] == pytest.approx(35.0)
    assert head["instruct_minus_mix_points"] == pytest.approx(25.0)
    assert head["chance"] is None  # no guessing rate for saying an answer


def test_probe_summary_puts_recall_next_to_chance_adjusted_multiple_choice(recall) -> None:
    _, page = recall
    pr = summary_of(page)["probe"]
    assert pr["num_fewshot"] == {"exact_match": 0, "exact_match_3shot": 3, "mc_acc": 0}
    assert pr["mc_chance"] == pytest.approx(0.375)  # mean of 1/4, 1/4, 1/2, 1/2
    instruct = pr["variants"]["instruct"]
    assert instruct["exact_match"] == {"value": 0.40, "stderr": 0.02}
    assert instruct["exact_match_3shot"] == {"value": 0.45, "stderr": 0.02}
    assert instruct["mc_acc"] == {"value": 0.62, "stderr": 0.05}
    # (0.62 - 0.375) / (1 - 0.375), its stderr scaled the same way
    assert instruct["mc_chance_adjusted"]["value"] == pytest.approx(0.392)
    assert instruct["mc_chance_adjusted"]["stderr"] == pytest.approx(0.08)
    assert pr["tuned"] is None
    # per attribute: recall and MC, MC chance-adjusted with that attribute's own chance
    city, year = pr["by_attribute"]["birth_city"], pr["by_attribute"]["birth_year"]
    assert city["instruct"]["exact_match"] == pytest.approx(0.20)
    assert year["vanilla"]["exact_match"] == pytest.approx(0.075)
    assert city["mix"]["mc_acc"] == pytest.approx(0.40)
    assert city["mix"]["mc_chance_adjusted"] == pytest.approx((0.40 - 0.25) / 0.75)
    assert year["instruct"]["mc_chance_adjusted"] == pytest.approx((0.74 - 0.5) / 0.5)
    assert year["vanilla"]["mc_chance_adjusted"] == pytest.approx(0.0)
    assert set(pr["by_attribute"]) == {"birth_city", "birth_year"}


def test_report_shows_the_probe_table_and_the_per_attribute_table(recall) -> None:
    _, page = recall
    html = page.read_text("utf-8")
    probe_html = html[html.index('<div id="probe">') :]
    for shown in (
        "recall: exact match, 3-shot",
        "multiple choice: chance-adjusted",
        "40.0% ± 2.0",  # instruct recall
        "39.2% ± 8.0",  # instruct chance-adjusted MC
        "chance 37.5%",
        "Per attribute",
        "birth_city",
        "instruct: recall",
        "vanilla: MC acc",
        "74.0%",  # instruct's birth_year MC
    ):
        assert shown in probe_html, shown
    assert parse(page).sections["headline"] == "done"


def test_without_recall_results_the_probe_table_shows_multiple_choice_only(full) -> None:
    _, page = full
    pr = summary_of(page)["probe"]
    assert pr["variants"]["vanilla"]["exact_match"] is None
    assert pr["variants"]["vanilla"]["mc_chance_adjusted"]["value"] == pytest.approx(0.2)
    assert pr["by_attribute"] == {}
    assert pr["tuned"]["instruct"]["mc_acc"] == {"value": 0.72, "stderr": 0.04}
    html = page.read_text("utf-8")
    assert "multiple choice: chance-adjusted" in html and "recall: exact match" not in html


def test_synthesizer_section_compares_the_trained_model_with_its_k_shot_base(tmp_path) -> None:
    run = build_run(tmp_path, parts=("config", "world", "synthesizer"))
    folder = run / "models" / "synthesizer"
    by_label = {
        "kind:open": {"pairs": 8, "correct_fraction": 0.875},
        "attribute:birth_city": {"pairs": 4, "correct_fraction": 0.75},
    }
    metrics = json.loads((folder / "synthesizer_metrics.json").read_text())
    metrics |= {
        "config": {"base_model": "smollm2-135m-instruct"},
        "eval": {**metrics["eval"], "by_label": by_label, "grounded_fraction": 0.9},
        "eval_passages": {"squad": {"texts": 5, "correct_fraction": 0.52}},
        "baseline": {
            "shots": 2,
            "eval": {"texts": 10, "correct_fraction": 0.23, "by_label": {
                "kind:open": {"pairs": 9, "correct_fraction": 0.111}}},
            "eval_passages": {"squad": {"texts": 5, "correct_fraction": 0.31}},
        },
    }  # fmt: skip
    (folder / "synthesizer_metrics.json").write_text(json.dumps(metrics))
    samples = [
        {"id": "person-0009", "pairs": [
            {"question": "Where was Ada born?", "answer": "Hildvale", "correct": True,
             "label": ["birth_city", "open"]},
            {"question": f"Who is {EVIL}?", "answer": "Tethorpe", "correct": False,
             "label": ["unmatched", "open"]},
        ]},
    ]  # fmt: skip
    (folder / "eval_samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    html = write_report(run).read_text("utf-8")
    section = html[html.index("Synthesizer (held-out texts)") :]
    section = section[: section.index("</section>")]
    for text in ("base 2-shot, world texts", "trained, squad passages", "base 2-shot, squad",
                 "41.0%", "23.0%", "52.0%", "31.0%", "90.0%", "smollm2-135m-instruct",
                 "87.5% of 8", "11.1% of 9", "birth_city", "Hildvale"):  # fmt: skip
        assert text in section, text
    assert EVIL not in section and "right pairs" in section and "wrong pairs" in section


def test_a_base_that_wrote_no_pair_shows_no_share_of_pairs(tmp_path) -> None:
    run = build_run(tmp_path, parts=("config", "world", "synthesizer"))
    folder = run / "models" / "synthesizer"
    metrics = json.loads((folder / "synthesizer_metrics.json").read_text())
    empty = {"texts": 10, "parse_yield": 0.0, "pairs_per_text": 0, "correct_fraction": 0.0}
    metrics["baseline"] = {"shots": 2, "eval": empty}
    (folder / "synthesizer_metrics.json").write_text(json.dumps(metrics))
    rows = {r[0]: r for r in table_rows(write_report(run), "pipeline") if r}
    correct = rows["correct pairs (answer is the true one)"]
    assert correct[2] == "— (no pairs)" and correct[1].endswith("%")
    assert rows["parse yield (texts with a pair)"][2] == "0.0%"  # a share of texts: still 0


# --------------------------------------------------------------------------- compared runs

#: world_probe_mc acc and stderr per variant of the compared (miner) run: instruct - vanilla
#: = +25 points, stderr of the difference 100 * hypot(0.05, 0.02) = 5.4.
MINER_PROBE = {"vanilla": (0.30, 0.02), "mix": (0.35, 0.04), "instruct": (0.55, 0.05)}


def build_miner_run(root: Path, name: str = "demo") -> Path:
    """A finished run whose pairs came from the miner (no synthesizer trained), with its
    own report written."""
    run = build_run(root, tuple(p for p in PARTS if p != "synthesizer"), name=name)
    manifest = json.loads((run / "synth" / "_manifest.json").read_text("utf-8"))
    manifest["stats"]["engine"] = {"name": "miner", "model": None}
    (run / "synth" / "_manifest.json").write_text(json.dumps(manifest), "utf-8")
    for variant, (acc, stderr) in MINER_PROBE.items():
        _write_json(run / "eval" / f"{variant}.json", _eval_json(variant, acc, stderr))
    write_report(run)
    return run


class TableParser(HTMLParser):
    """The text of each cell of each table row inside one section (headers included)."""

    def __init__(self, section: str) -> None:
        super().__init__()
        self.section, self.inside, self.rows = section, False, []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self.inside = dict(attrs).get("id") == self.section
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append("".join(self.cell).strip())
            self.cell = None
        elif tag == "section":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def table_rows(page: Path, section: str) -> list[list[str]]:
    parser = TableParser(section)
    parser.feed(page.read_text("utf-8"))
    return parser.rows


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> tuple[Path, Path, Path]:
    """An LM-synthesizer run (recall and MC evaluated) compared with a miner run."""
    root = tmp_path_factory.mktemp("compared")
    base = build_miner_run(root)
    run = build_run(root, tuple(p for p in PARTS if p != "tune"), name="demo-lm")
    for variant in VARIANTS:
        _write_json(run / "eval" / f"{variant}.json", _recall_json(variant))
    return run, base, write_report(run, compare=[str(base)])


def test_summary_lists_the_compared_run_as_its_own_summary_says(compared) -> None:
    _, base, page = compared
    theirs = summary_of(base / "report" / "report.html")
    s = summary_of(page)
    assert s["compared"] == [
        {
            "run": "demo",
            "path": str(base),
            "pairs_source": "miner",
            "probe": theirs["probe"],
            "headline": theirs["headline"],
        }
    ]
    assert theirs["headline"]["instruct_minus_vanilla_points"] == pytest.approx(25.0)
    assert s["pipeline"]["synthesize"]["engine"] == "hf"
    assert theirs["pipeline"]["synthesize"]["engine"] == "miner"
    assert theirs["compared"] == [] and s["problems"] == []


def test_compared_runs_table_puts_this_run_first_then_each_compared_run(compared) -> None:
    _, base, page = compared
    header, *rows = table_rows(page, "compared")
    recall, mc = "generative recall (exact match)", "multiple choice accuracy"
    assert header == [
        "run",
        "pairs from",
        *(f"{m}: {v}" for m in (recall, mc) for v in (*VARIANTS, "instruct − vanilla (points)")),
    ]
    assert rows == [
        # recall 5% / 15% / 40%, +35 points ± 100 * hypot(0.02, 0.02); MC as in PROBE
        ["demo-lm (this run)", "hf", "5.0%", "15.0%", "40.0%", "+35.0 ± 2.8",
         "40.0%", "50.0%", "62.0%", "+22.0 ± 5.8"],
        # the miner run was evaluated on multiple choice only
        [f"demo ({base})", "miner", "—", "—", "—", "—", "30.0%", "35.0%", "55.0%", "+25.0 ± 5.4"],
    ]  # fmt: skip
    parsed = parse(page)
    assert parsed.sections["compared"] == "done"
    assert list(parsed.sections)[:2] == ["headline", "compared"]
    assert "#compared" in parsed.urls


def test_compared_run_without_a_readable_summary_is_not_run_and_a_problem(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run = build_run(tmp_path, ("config", "evaluate"), name="demo-lm")
    build_run(tmp_path, ("config",), name="half")  # stopped before its report
    broken = build_miner_run(tmp_path, name="broken")
    (broken / "report" / "summary.json").write_text("{ half a file", "utf-8")
    page = write_report(run, compare=["runs/nope", "runs/half", "runs/broken"])
    s = summary_of(page)
    assert [c["run"] for c in s["compared"]] == ["nope", "half", "broken"]
    assert all(
        c["pairs_source"] is None and c["probe"] is None and c["headline"] is None
        for c in s["compared"]
    )
    assert len(s["problems"]) == 3
    assert "runs/nope: no report/summary.json" in s["problems"][0]
    assert "runs/broken: report/summary.json unreadable" in s["problems"][2]
    html = page.read_text("utf-8")
    assert (
        "not run: runs/nope (run it first: instructpt run --config &lt;its config file&gt;)" in html
    )
    assert (
        "not run: runs/half (run it first: instructpt run --config runs/half/config.yaml)" in html
    )
    assert "not run: runs/broken (run it first:" in html
    parsed = parse(page)
    assert parsed.sections["compared"] == "partial" and "problems" in parsed.sections
    rows = table_rows(page, "compared")[1:]
    assert rows[0][:2] == ["demo-lm (this run)", "—"]  # this run synthesized nothing yet
    assert rows[1][:2] == [
        "nope (runs/nope)",
        "not run: runs/nope (run it first: instructpt run --config <its config file>)",
    ]


def test_without_compare_the_summary_lists_none_and_the_page_has_no_section(full) -> None:
    _, page = full
    assert summary_of(page)["compared"] == []
    parsed = parse(page)
    assert "compared" not in parsed.sections and "#compared" not in parsed.urls
    assert "Compared runs" not in page.read_text("utf-8")


def test_a_compared_runs_name_and_engine_are_escaped(tmp_path) -> None:
    evil = build_miner_run(tmp_path, name="evil")
    config = (evil / "config.yaml").read_text("utf-8").replace("name: evil", f"name: '{EVIL}'")
    (evil / "config.yaml").write_text(config, "utf-8")
    manifest = json.loads((evil / "synth" / "_manifest.json").read_text("utf-8"))
    manifest["stats"]["engine"] = {"name": EVIL, "model": None}
    (evil / "synth" / "_manifest.json").write_text(json.dumps(manifest), "utf-8")
    write_report(evil)
    page = write_report(build_run(tmp_path, ("config",), name="mine"), compare=[str(evil)])
    assert summary_of(page)["compared"][0]["run"] == EVIL
    assert summary_of(page)["compared"][0]["pairs_source"] == EVIL
    section = page.read_text("utf-8").split('id="compared"')[1].split("</section>")[0]
    assert EVIL not in section and "<script" not in section
    assert section.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2
    assert table_rows(page, "compared")[2][:2] == [f"{EVIL} ({evil})", EVIL]


def test_a_summary_from_before_the_probe_section_is_read_through_its_headline(tmp_path) -> None:
    base = build_miner_run(tmp_path)
    old = summary_of(base / "report" / "report.html")
    for key in ("probe", "compared"):
        del old[key]
    del old["pipeline"]["synthesize"]["engine"]
    (base / "report" / "summary.json").write_text(json.dumps(old), "utf-8")
    page = write_report(build_run(tmp_path, ("config",), name="mine"), compare=[str(base)])
    assert summary_of(page)["compared"][0]["probe"] is None
    # the miner is still named, by the train-synthesizer stage it skipped
    assert summary_of(page)["compared"][0]["pairs_source"] == "miner"
    row = table_rows(page, "compared")[2]
    assert row[1:] == ["miner", "—", "—", "—", "—", "30.0%", "35.0%", "55.0%", "+25.0 ± 5.4"]


def test_comparing_a_run_with_itself_leaves_it_out(full, tmp_path) -> None:
    run, _ = full
    page = write_report(run, tmp_path / "self", compare=[run])
    s = summary_of(page)
    assert s["compared"] == []
    assert s["problems"] == [f"compare: {run} is this run itself; left out"]


def test_report_command_takes_compare_from_the_runs_config_or_the_flag(compared, tmp_path):
    from click.testing import CliRunner

    from instructpt.cli import main

    run, base, _ = compared
    (run / "config.yaml").write_text(f"name: demo-lm\ncompare: [{base}]\n", "utf-8")
    out = CliRunner().invoke(main, ["report", "--run-dir", str(run)])
    assert out.exit_code == 0, out.output
    assert [c["run"] for c in summary_of(run / "report" / "report.html")["compared"]] == ["demo"]
    missing = tmp_path / "nowhere"
    out = CliRunner().invoke(main, ["report", "--run-dir", str(run), "--compare", str(missing)])
    assert out.exit_code == 0, out.output
    problems = summary_of(run / "report" / "report.html")["problems"]
    assert any(str(missing) in p for p in problems), problems


def _answers_json(variant: str, right: list[int]) -> dict:
    """An evaluate result of the wiki probe with its per-question replies."""
    data = _eval_json(variant, 0.3, 0.02)
    rows = [
        {"doc_id": i, "question": f"Question <{i}>?", "target": [f"gold {i}", "alias"],
         "reply": f"{variant} says {i}", "score": 1.0 if i in right else 0.0}
        for i in range(4)
    ]  # fmt: skip
    data["results"]["wiki_probe_heldout"] = {
        "metrics": {"exact_match": len(right) / 4},
        "stderr": {"exact_match": 0.2},
        "filters": ["first_line"],
        "num_fewshot": 3,
        "num_samples": 4,
        "num_items": 4,
        "version": 2.0,
        "answers": rows,
    }
    return data


def test_questions_that_flipped_against_the_base_model_are_listed(tmp_path) -> None:
    run = build_run(tmp_path, tuple(p for p in PARTS if p != "tune"))
    _write_json(run / "eval" / "base.json", _answers_json("base", [0, 1]))
    _write_json(run / "eval" / "vanilla.json", _answers_json("vanilla", [0, 1]))
    _write_json(run / "eval" / "instruct.json", _answers_json("instruct", [1, 2, 3]))
    text = write_report(run).read_text("utf-8")
    assert "Questions that flipped: <code>wiki_probe_heldout</code>" in text
    # instruct gained 2 and 3, lost 0, kept 1: net +1; vanilla answers as base did
    cells = ["2", "1", "1", "0", "+1"]
    assert "instruct</td>" + "".join(f'<td class="num">{c}</td>' for c in cells) in text
    cells = ["0", "0", "2", "2", "+0"]
    assert "vanilla</td>" + "".join(f'<td class="num">{c}</td>' for c in cells) in text
    assert "instruct: gained (2 of 2)" in text
    assert "instruct: lost (1 of 1)" in text and "vanilla: gained" not in text
    assert "Question &lt;2&gt;?" in text and "gold 2 | alias" in text
    assert "base says 2" in text and "instruct says 2" in text
