"""`report.html`: one static page, readable offline, safe to open and to send.

Self-contained: CSS inline, plots inline SVG, no script, no font, no image
file, no link out. A Content-Security-Policy meta tag forbids every external
load and every script, so a slip (or text from the corpus that looks like
HTML) can neither run nor phone home, and a browser logs it as a console
error, which the browser test fails on. Every string from the run (texts,
ids, config, reasons) goes through `esc`; only markup built here is raw.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

from instructpt import __version__
from instructpt.core.layout import BASE_EVAL
from instructpt.evaluate.answers import flips
from instructpt.report import figures
from instructpt.report.collect import CORPORA, METRIC_ORDER, PROBE_METRICS, VARIANTS, RunFacts
from instructpt.report.summary import (
    COMPARE_COLUMNS,
    compare_scores,
    compared_entry,
    headline,
    probe,
    seed_spread,
    tokens_by_source,
    tuning,
)

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
#: Largest spread of token counts between variants still called equal (the mix
#: stage fills a budget to within a record's tokens).
EQUAL_TOKENS_TOLERANCE = 0.01
#: Longest text shown per example pane; the rest is counted, not shown.
MAX_EXAMPLE_CHARS = 2500

CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#e4e7eb; --bg:#f7f8fa; --ok:#1e7a46;
  --warn:#a35d00; --miss:#9b1c1c; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 0 0 12px; }
h3 { font-size: 16px; margin: 18px 0 8px; }
h4 { font-size: 13px; margin: 10px 0 6px; color: var(--muted); }
section { background:#fff; border:1px solid var(--line); border-radius:8px;
  padding: 18px 22px; margin: 18px 0; }
nav a { margin-right: 14px; color: var(--ink); }
.muted, figcaption { color: var(--muted); font-size: 13px; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 14px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 12px 4px 0; text-align: left;
  vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.state-done { color: var(--ok); } .state-partial { color: var(--warn); }
.state-not-run, .not-run { color: var(--miss); } .state-skipped { color: var(--muted); }
p.not-run { font-weight: 600; }
.cards { display: flex; gap: 16px; flex-wrap: wrap; margin: 8px 0 12px; }
.card { border:1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 220px; }
.card .big { font-size: 30px; font-weight: 700; }
.card .big.pos { color: var(--ok); } .card .big.neg { color: var(--miss); }
figure { margin: 8px 0 12px; } figure svg { width: 100%; max-width: 860px; height: auto; }
figure.small svg { max-width: 480px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr));
  gap: 0 32px; }
ul.stages { list-style: none; padding: 0; margin: 12px 0 0; display: flex; flex-wrap: wrap;
  gap: 6px; font-size: 12.5px; }
ul.stages li { border: 1px solid var(--line); border-radius: 12px; padding: 1px 10px;
  background: #fff; } ul.stages b { color: var(--ink); font-weight: 600; }
.swatch { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:6px; }
.example { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; margin: 10px 0 18px; }
pre { white-space: pre-wrap; word-break: break-word; background: var(--bg);
  border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; margin: 0 0 8px;
  font: 12.5px/1.45 ui-monospace, "DejaVu Sans Mono", monospace; max-height: 460px;
  overflow: auto; }
pre.whole { max-height: none; }
ul.problems { color: var(--warn); }
@media print { pre { max-height: none; } section { break-inside: avoid-page; } }
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


# --------------------------------------------------------------------------- formatting


def fmt_int(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else _dash(value)


def fmt_pct(value: Any, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f}%" if _is_number(value) else _dash(value)


def fmt_float(value: Any, digits: int = 3) -> str:
    return f"{value:,.{digits}f}" if _is_number(value) else _dash(value)


def fmt_points(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1f}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _dash(value: Any) -> str:
    # A key the stage did not write is shown as missing, never as zero.
    return "—" if value is None else str(value)


def table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[bool] = ()
) -> str:
    """A table of escaped cells; `numeric[i]` right-aligns column i."""
    numeric = list(numeric) + [False] * (len(headers) - len(numeric))

    def cell(tag: str, value: Any, i: int) -> str:
        cls = ' class="num"' if numeric[i] else ""
        return f"<{tag}{cls}>{value.html if isinstance(value, Html) else esc(value)}</{tag}>"

    head = "".join(cell("th", h, i) for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(cell("td", v, i) for i, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Html:
    """Markup built here (already escaped), as opposed to a string from the run."""

    def __init__(self, html: str) -> None:
        self.html = html


def not_run(what: str) -> str:
    return f'<p class="not-run">not run: {esc(what)}</p>'


def not_run_cell(what: str) -> str:
    return f'<span class="not-run">not run: {esc(what)}</span>'


def figure(svg: str, name: str, caption: str, small: bool = False) -> str:
    cls = "plot small" if small else "plot"
    return (
        f'<figure class="{cls}" data-figure="{esc(name)}">{svg}'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def variant_label(variant: str, order: Sequence[str]) -> Html:
    color = figures.variant_color(variant, order)
    return Html(f'<span class="swatch" style="background:{color}"></span>{esc(variant)}')


def section(ident: str, title: str, state: str, body: str) -> str:
    return f'<section id="{ident}" data-state="{esc(state)}"><h2>{esc(title)}</h2>{body}</section>'


# --------------------------------------------------------------------------- sections


def render(facts: RunFacts) -> str:
    """The whole page for `facts`."""
    # Without compared runs there is no section, and no link to one: the page stays as it was.
    compared = [_compared(facts)] if facts.compared else []
    parts = [
        _headline(facts),
        *compared,
        _evaluation(facts),
        _tuning(facts),
        _magpie(facts),
        _training(facts),
        _pipeline(facts),
        _examples(facts),
        _config(facts),
    ]
    problems = ""
    if facts.problems:
        items = "".join(f"<li>{esc(p)}</li>" for p in facts.problems)
        problems = f'<section id="problems"><h2>Problems</h2><ul class="problems">{items}</ul>'
        problems += "</section>"
    nav = " ".join(
        f'<a href="#{i}">{t}</a>'
        for i, t in (
            ("headline", "Headline"),
            *([("compared", "Compared runs")] if compared else []),
            ("evaluation", "Evaluation"),
            ("tuning", "Tuning"),
            ("magpie", "Magpie"),
            ("training", "Training"),
            ("pipeline", "Pipeline"),
            ("examples", "Examples"),
            ("config", "Config"),
        )
    )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>instructpt report: {esc(facts.name)}</title><style>{CSS}</style></head>\n"
        "<body><main>"
        f"<header><h1>Instruction pre-training report: {esc(facts.name)}</h1>"
        f'<p class="muted">run directory <code>{esc(facts.run_dir)}</code>; every number '
        "below is read from the files the stages wrote. A stage without its output is shown "
        "as <em>not run</em>.</p>"
        f"<nav>{nav}</nav>{_stages(facts)}</header>\n" + problems + "\n".join(parts) + "\n"
        f'<footer class="muted">instructpt {esc(__version__)}: a static page, no scripts and '
        "no external resources.</footer></main></body></html>\n"
    )


def _stages(facts: RunFacts) -> str:
    items = []
    for stage, state in facts.stage_states().items():
        cls = "state-" + state.split(":")[0].replace(" ", "-")
        items.append(
            f'<li class="{cls}" data-stage="{esc(stage)}"><b>{esc(stage)}</b> {esc(state)}</li>'
        )
    return f'<ul id="stages" class="stages">{"".join(items)}</ul>'


def _headline(facts: RunFacts) -> str:
    head = headline(facts)
    title = "Headline: instruction pre-training against the controls"
    if head is None:
        probes = " / ".join(t for t, _ in PROBE_METRICS)
        return section(
            "headline",
            title,
            "not-run",
            not_run(f"no variant was evaluated on the probe ({probes})"),
        )
    metric, task = head["metric"], head["task"]
    cards = []
    for other in ("vanilla", "mix"):
        gap = head[f"instruct_minus_{other}_points"]
        err = head[f"instruct_minus_{other}_stderr_points"]
        if gap is None:
            missing = [v for v in ("instruct", other) if v not in head["scores"]]
            big = f'<div class="big not-run">not run</div><div class="muted">no {esc(task)} '
            big += f"score for {esc(' and '.join(missing))}</div>"
        else:
            sign = "pos" if gap > 0 else "neg" if gap < 0 else ""
            big = f'<div class="big {sign}">{esc(fmt_points(gap))} points</div>'
            big += f'<div class="muted">± {esc(fmt_float(err, 1))} (stderr of the difference)</div>'
        cards.append(
            f'<div class="card" data-gap="instruct-minus-{other}"><h4>instruct − {other}</h4>'
            f"{big}</div>"
        )
    rows = []
    order = facts.variants
    for variant in VARIANTS:
        score = head["scores"].get(variant)
        ev = facts.evaluate.get(variant) or {}
        res = (ev.get("tasks") or {}).get(task) or {}
        if score is None:
            rows.append((variant_label(variant, order), Html(not_run_cell("no score")), "", ""))
            continue
        rows.append(
            (
                variant_label(variant, order),
                fmt_pct(score["value"]),
                "—" if score["stderr"] is None else fmt_pct(score["stderr"]),
                fmt_int(res.get("num_samples")),
            )
        )
    chance = facts.chance.get(task) if metric in ("acc", "acc_norm") else None
    if chance is not None:
        guess = Html('<span class="muted">chance (1/options)</span>')
        rows.append((guess, fmt_pct(chance), "", ""))
    shots = head["num_fewshot"]
    body = (
        f"<p>Task <code>{esc(task)}</code>, metric <code>{esc(metric)}</code>, "
        f"{esc(shots if shots is not None else '?')}-shot: questions about the world's "
        "held-out <em>probe</em> entities, whose texts are in every pre-training mix but "
        "whose questions no model saw. Gaps are in percentage points; the stderr of a "
        "gap treats the two runs as independent.</p>"
        f'<div class="cards">{"".join(cards)}</div>'
        + table(("variant", metric, "stderr", "items scored"), rows, (False, True, True, True))
        + _probe_tables(facts)
    )
    return section("headline", title, "done", body)


#: The probe table's columns: (summary key, header).
PROBE_HEADERS = (
    ("exact_match", "recall: exact match"),
    ("exact_match_3shot", "recall: exact match, 3-shot"),
    ("mc_acc", "multiple choice: acc"),
    ("mc_chance_adjusted", "multiple choice: chance-adjusted"),
)


def _score_cell(score: dict[str, Any] | None) -> str:
    if score is None or score.get("value") is None:
        return "—"
    err = score.get("stderr")
    return fmt_pct(score["value"]) + ("" if err is None else f" ± {100 * err:.1f}")


def _probe_tables(facts: RunFacts) -> str:
    """Recall next to multiple choice per variant (and tuned), then per attribute."""
    pr = probe(facts)
    if pr is None:
        return ""
    order = facts.variants
    keys = [k for k, _ in PROBE_HEADERS]
    found = [
        k
        for k in keys
        if any(r and r.get(k) for r in [*pr["variants"].values(), *(pr["tuned"] or {}).values()])
    ]
    if not found:
        return ""
    headers = dict(PROBE_HEADERS)
    rows: list[tuple[Any, ...]] = []
    for label, group in (("", pr["variants"]), (" (tuned)", pr["tuned"] or {})):
        for variant in order:
            if variant not in group:
                continue
            row = group[variant]
            name = Html(variant_label(variant, order).html + esc(label))
            if row is None:
                rows.append((name, Html(not_run_cell("evaluate")), *[""] * (len(found) - 1)))
                continue
            rows.append((name, *[_score_cell(row.get(k)) for k in found]))
    shots = ", ".join(
        f"{headers[k]}: {pr['num_fewshot'][k]}-shot"
        for k in found
        if k in pr["num_fewshot"] and pr["num_fewshot"][k] is not None
    )
    body = (
        "<h3>The probe: saying the answer, and recognising it</h3>"
        '<p class="muted">Recall: greedy generation, exact match after normalising reply '
        "and answer alike (case, punctuation, articles, whitespace; the first line only). "
        "Multiple choice: the true answer against distractors by log-likelihood; "
        "chance-adjusted = (acc − chance) / (1 − chance), 0 at guessing"
        + ("" if pr["mc_chance"] is None else f" (chance {fmt_pct(pr['mc_chance'])})")
        + f". Percent ± stderr. {esc(shots)}</p>"
        + table(("variant", *[headers[k] for k in found]), rows, (False, *[True] * len(found)))
    )
    by_attribute = pr["by_attribute"]
    if by_attribute:
        variants = [v for v in order if any(v in cells for cells in by_attribute.values())]
        cols = [
            (v, k)
            for v in variants
            for k in ("exact_match", "mc_acc")
            if any(k in cells.get(v, {}) for cells in by_attribute.values())
        ]
        short = {"exact_match": "recall", "mc_acc": "MC acc"}
        attr_rows = [
            (
                attribute,
                *[
                    "—" if cells.get(v, {}).get(k) is None else fmt_pct(cells[v][k])
                    for v, k in cols
                ],
            )
            for attribute, cells in by_attribute.items()
        ]
        body += (
            "<h3>Per attribute</h3>"
            '<p class="muted">The same scores per kind of fact (zero-shot), for each '
            "pre-trained variant.</p>"
            + table(
                ("attribute", *[f"{v}: {short[k]}" for v, k in cols]),
                attr_rows,
                (False, *[True] * len(cols)),
            )
        )
    body += _seed_table(facts, headers)
    return f'<div id="probe">{body}</div>'


def _seed_table(facts: RunFacts, headers: dict[str, str]) -> str:
    """Mean ± sd of each probe score over the pre-training seeds (`seeds` in the config)."""
    spread = seed_spread(facts)
    if spread is None:
        return ""
    keys = [k for k in headers if any(k in cells for cells in spread["variants"].values())]
    order = facts.variants

    def cell(c: dict[str, Any] | None) -> str:
        if c is None:
            return "—"
        sd = "" if c["sd"] is None else f" ± {100 * c['sd']:.1f}"
        return f"{100 * c['mean']:.1f}{sd} (n={c['n']})"

    rows = [
        (variant_label(v, order), *[cell(spread["variants"][v].get(k)) for k in keys])
        for v in order
        if v in spread["variants"]
    ]
    seeds = ", ".join(str(s) for s in spread["seeds"][1:])
    return (
        "<h3>Over pre-training seeds</h3>"
        f'<p class="muted">Each variant pre-trained again with seeds {esc(seeds)} on the same '
        "tokens (seeds/&lt;seed&gt;/), besides the run's own models: mean ± sample sd, in "
        "percent, over every seed whose model was evaluated. The sd is training noise, which "
        "the stderr of one run leaves out.</p>"
        + table(("variant", *[headers[k] for k in keys]), rows, (False, *[True] * len(keys)))
    )


def _compared(facts: RunFacts) -> str:
    """This run's probe scores beside those of the runs in `compare`, read from their summaries."""
    labels = dict(COMPARE_COLUMNS)
    # per probe key: a column per variant (its score), then one for instruct - vanilla (None)
    columns = [(key, v) for key in labels for v in (*VARIANTS, None)]
    headers = [
        "run",
        "pairs from",
        *(f"{labels[key]}: {v or 'instruct − vanilla (points)'}" for key, v in columns),
    ]

    def cells(scores: dict[str, dict[str, Any]]) -> list[str]:
        out = []
        for key, variant in columns:
            col = scores[key]
            if variant is not None:
                score = col["scores"][variant]
                out.append("—" if score is None else fmt_pct(score["value"]))
                continue
            gap = col["instruct_minus_vanilla_points"]
            err = col["instruct_minus_vanilla_stderr_points"]
            out.append(fmt_points(gap) + ("" if gap is None or err is None else f" ± {err:.1f}"))
        return out

    this = Html(f'{esc(facts.name)} <span class="muted">(this run)</span>')
    rows: list[tuple[Any, ...]] = [
        (this, facts.pairs_source or "—", *cells(compare_scores(probe(facts), headline(facts))))
    ]
    for run in facts.compared:
        entry = compared_entry(run)
        name = Html(f'{esc(entry["run"])} <span class="muted">({esc(run.path)})</span>')
        if run.summary is None:
            what = f"{run.path} (run it first: {run.run_it_first()})"
            rows.append((name, Html(not_run_cell(what)), *[""] * len(columns)))
            continue
        scores = compare_scores(entry["probe"], entry["headline"])
        rows.append((name, entry["pairs_source"] or "—", *cells(scores)))
    body = (
        "<p>The world probe of each run, read from the <code>report/summary.json</code> its "
        "own run wrote: percent of probe questions, and instruct − vanilla in percentage "
        "points ± the stderr of that difference. Runs are comparable when they share the "
        "world and the evaluation (same <code>world</code> and <code>evaluate</code> "
        "sections).</p>" + table(headers, rows, (False, False, *[True] * len(columns)))
    )
    state = "done" if all(run.summary is not None for run in facts.compared) else "partial"
    return section("compared", "Compared runs", state, body)


def _pipeline(facts: RunFacts) -> str:
    synth_table, synth_figure = _synthesize(facts)
    cells = [
        "<h3>Documents</h3>" + _documents(facts),
        "<h3>Synthesizer (held-out texts)</h3>" + _synthesizer(facts),
        "<h3>Synthesis: pairs per text, parse yield, drops</h3>" + synth_table,
        "<h3>Cooking</h3>" + _cook(facts) + synth_figure,
    ]
    body = '<div class="grid">' + "".join(f"<div>{c}</div>" for c in cells) + "</div>"
    body += "<h3>Token mix per recipe</h3>" + _mix(facts)
    done = [facts.world, facts.synthesize, facts.cook, *facts.mix.values()]
    state = "done" if all(x is not None for x in done) else "partial"
    return section("pipeline", "Pipeline", state, body)


def _documents(facts: RunFacts) -> str:
    out = ""
    if facts.world is None:
        out += not_run("world (the seeded demo world)")
    else:
        w = facts.world
        groups = [
            (k.removeprefix("group."), v) for k, v in sorted(w.items()) if k.startswith("group.")
        ]
        rows = [("entity texts", fmt_int(w.get("documents"))), ("words", fmt_int(w.get("words")))]
        rows += [(f"  group {g}", fmt_int(v)) for g, v in groups]
        rows.append(("true QA pairs", fmt_int(w.get("qa"))))
        out += "<h4>world</h4>" + table(("", "count"), rows, (False, True))
    rows = []
    for corpus in CORPORA:
        st = facts.ingest.get(corpus)
        if st is None:
            rows.append((corpus, Html(not_run_cell("ingest")), "", ""))
            continue
        skipped = st.get("skipped") or {}
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(skipped.items())) or "none"
        rows.append((corpus, fmt_int(st.get("read")), fmt_int(st.get("kept")), reasons))
    out += "<h4>ingest</h4>" + table(
        ("corpus", "read", "kept", "skipped by reason"), rows, (False, True, True, False)
    )
    return out


#: Rows of the held-out synthesizer table: (label, metric key, formatter).
_SYNTH_ROWS: tuple[tuple[str, str, Any], ...] = (
    ("held-out texts", "texts", fmt_int),
    ("parse yield (texts with a pair)", "parse_yield", fmt_pct),
    ("pairs per text", "pairs_per_text", lambda v: fmt_float(v, 2)),
    ("correct pairs (answer is the true one)", "correct_fraction", fmt_pct),
    ("correctly answered attributes per text", "correct_attributes_per_text",
     lambda v: fmt_float(v, 2)),
    ("questions matching a true question", "question_matched_fraction", fmt_pct),
    ("answer F1", "answer_f1", fmt_float),
    ("pairs kept by the grounding filters", "grounded_fraction", fmt_pct),
)  # fmt: skip


#: Rows that are shares of the pairs written (undefined when there are none).
_PER_PAIR = frozenset(
    {"correct_fraction", "question_matched_fraction", "answer_f1", "grounded_fraction"}
)


def _synthesizer(facts: RunFacts) -> str:
    if facts.synthesizer is None and facts.mined:
        return (
            '<p class="muted">skipped: the pairs come from the model-free miner '
            "(synthesize engine <code>miner</code>), so no synthesizer was trained.</p>"
        )
    if facts.synthesizer is None:
        return not_run("train-synthesizer (no models/synthesizer/synthesizer_metrics.json)")
    syn = facts.synthesizer
    base = syn.get("baseline") or {}
    shots = base.get("shots")
    columns: list[tuple[str, dict[str, Any]]] = [("trained, world texts", syn["eval"])]
    if base.get("eval"):
        columns.append((f"base {shots}-shot, world texts", base["eval"]))
    for source, ev in sorted((syn.get("eval_passages") or {}).items()):
        columns.append((f"trained, {source} passages", ev))
        if (base.get("eval_passages") or {}).get(source):
            columns.append((f"base {shots}-shot, {source}", base["eval_passages"][source]))

    def value(ev: dict[str, Any], key: str, fmt: Any) -> str:
        # a share of pairs is undefined, not 0%, when the model wrote no pair at all
        if key in _PER_PAIR and ev.get("pairs_per_text") == 0:
            return "— (no pairs)"
        return str(fmt(ev.get(key)))

    rows = [[label] + [value(ev, key, fmt) for _, ev in columns] for label, key, fmt in _SYNTH_ROWS]
    tr = syn["train"]
    out = table(("", *(c for c, _ in columns)), rows, (False,) + (True,) * len(columns))
    out += table(
        ("training", "value"),
        [
            ("base model", syn.get("base_model") or "none (a fresh model)"),
            ("parameters", fmt_int(syn.get("num_parameters"))),
            ("training steps", fmt_int(tr.get("steps"))),
            ("training seconds", fmt_float(tr.get("seconds"), 0)),
            (
                "training loss, first → last",
                f"{fmt_float(tr.get('first_loss'))} → {fmt_float(tr.get('last_loss'))}",
            ),
        ],
        (False, True),
    )
    out += _synth_by_label(syn["eval"], (base.get("eval") or {}), shots)
    for kind in ("right", "wrong"):
        examples = (syn.get("examples") or {}).get(kind) or []
        if examples:
            out += f"<h4>{kind} pairs (held-out texts)</h4>" + table(
                ("text", "question", "answer", "attribute"),
                [(e.get("id"), e.get("question"), e.get("answer"), (e.get("label") or ["—"])[0])
                 for e in examples],
            )  # fmt: skip
    return out


def _synth_by_label(ev: dict[str, Any], base: dict[str, Any], shots: Any) -> str:
    """Correct share by question kind and by attribute, trained vs the k-shot base."""
    ours, theirs = ev.get("by_label") or {}, base.get("by_label") or {}
    if not ours:
        return ""

    def cell(entry: dict[str, Any] | None) -> str:
        if not entry:
            return "—"
        return f"{fmt_pct(entry.get('correct_fraction'))} of {fmt_int(entry.get('pairs'))}"

    keys = sorted(set(ours) | set(theirs), key=lambda k: (not k.startswith("kind:"), k))
    headers = ["kind / attribute", "trained: correct of pairs"]
    if theirs:
        headers.append(f"base {shots}-shot")
    rows = [
        [key.split(":", 1)[1] if ":" in key else key, cell(ours.get(key))]
        + ([cell(theirs.get(key))] if theirs else [])
        for key in keys
    ]
    return "<h4>correct pairs by kind and attribute</h4>" + table(
        headers, rows, (False, True, True)
    )


def _synthesize(facts: RunFacts) -> tuple[str, str]:
    """The synthesis tables, and the pairs-per-text histogram (placed by the caller)."""
    st = facts.synthesize
    if st is None:
        return not_run("synthesize (no synth/_manifest.json)"), ""
    engine = st.get("engine") or {}
    rows = [
        ("texts", fmt_int(st.get("texts"))),
        ("pairs kept", fmt_int(st.get("pairs"))),
        ("pairs per text", fmt_float(st.get("pairs_per_text"), 2)),
        ("parse yield (texts with at least one pair)", fmt_pct(st.get("parse_yield"))),
        ("pieces parsed", fmt_int(st.get("pieces"))),
        ("linked (M-shot) texts", fmt_pct(st.get("linked_fraction"))),
        (
            "prompt / completion tokens",
            f"{fmt_int(st.get('prompt_tokens'))} / {fmt_int(st.get('completion_tokens'))}",
        ),
        ("engine", f"{engine.get('name', '—')}: {engine.get('model', '—')}"),
    ]
    out = table(("", "value"), rows, (False, True))
    dropped = st.get("dropped") or {}
    pieces = st.get("pieces")
    drop_rows = [
        (reason, fmt_int(n), fmt_pct(n / pieces) if pieces else "—")
        for reason, n in sorted(dropped.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    out += "<h4>dropped pieces by reason</h4>"
    out += (
        table(("reason", "pieces", "of pieces parsed"), drop_rows, (False, True, True))
        if drop_rows
        else '<p class="muted">none dropped</p>'
    )
    hist = st.get("pairs_per_text_histogram")
    if not hist:
        return out, ""
    caption = "Synthesized texts by the number of pairs kept."
    return out, figure(figures.pairs_histogram(hist), "pairs", caption, small=True)


def _cook(facts: RunFacts) -> str:
    st = facts.cook
    if st is None:
        return not_run("cook (no cooked/_manifest.json)")
    rows = [
        ("synthesized texts read", fmt_int(st.get("read"))),
        ("cooked records written", fmt_int(st.get("written"))),
        ("  with instructions", fmt_int(st.get("outputs_instruct"))),
        ("  raw (no renderable pair)", fmt_int(st.get("outputs_raw"))),
        (
            "linked chains (texts in them)",
            f"{fmt_int(st.get('chains'))} ({fmt_int(st.get('chained_texts'))})",
        ),
        (
            "pairs rendered / in",
            f"{fmt_int(st.get('pairs_rendered'))} / {fmt_int(st.get('pairs_in'))}",
        ),
    ]
    rows += [
        (f"dropped: {k.removeprefix('dropped_')}", fmt_int(v))
        for k, v in sorted(st.items())
        if k.startswith("dropped_")
    ]
    return table(("", "value"), rows, (False, True))


def _mix(facts: RunFacts) -> str:
    order = facts.variants
    present = {v: s for v, s in facts.mix.items() if s is not None}
    sources = sorted({s for st in present.values() for s in tokens_by_source(st)})
    sources = [s for s in figures.SOURCE_COLORS if s in sources] + [
        s for s in sources if s not in figures.SOURCE_COLORS
    ]
    rows = []
    for variant in order:
        st = facts.mix.get(variant)
        tok = facts.tokenize.get(variant)
        if st is None:
            if variant in VARIANTS:
                rows.append((variant_label(variant, order), Html(not_run_cell("mix"))))
            continue
        by = tokens_by_source(st)
        rows.append(
            (
                variant_label(variant, order),
                st.get("recipe", "—"),
                fmt_int(st.get("tokens")),
                *(
                    f"{fmt_int(by[s])} ({by[s] / st['tokens']:.0%})"
                    if s in by and st.get("tokens")
                    else fmt_int(by.get(s))
                    for s in sources
                ),
                fmt_int(st.get("records")),
                fmt_pct(st.get("augmented_doc_fraction")) if "augmented_doc_fraction" in st else "",
                fmt_int(tok.get("sequences")) if tok else "not run",
            )
        )
    headers = (
        "variant",
        "recipe",
        "tokens",
        *(f"{s} tokens" for s in sources),
        "records",
        "documents augmented",
        "sequences (tokenize)",
    )
    out = table(headers, rows, (False, False, *[True] * (len(headers) - 2)))
    if present:
        out += figure(
            figures.token_mix({v: tokens_by_source(s) for v, s in present.items()}),
            "mix",
            "Tokens of each variant by source: raw text, cooked instruction-augmented text, "
            "general instruction data. " + _budget_note(present),
        )
    return out


def _budget_note(mix: dict[str, dict[str, Any]]) -> str:
    """Whether the variants' token counts are equal, as the comparison needs (DESIGN.md)."""
    tokens = [st["tokens"] for st in mix.values() if _is_number(st.get("tokens"))]
    if len(tokens) < 2 or max(tokens) <= 0:
        return ""
    spread = (max(tokens) - min(tokens)) / max(tokens)
    if spread <= EQUAL_TOKENS_TOLERANCE:
        return f"The variants hold equal tokens (within {spread:.2%})."
    return (
        f"The mixes differ in size by up to {spread:.1%} of their tokens: the variants are not "
        "compared on equal data (training tokens may still be equal, see Training)."
    )


def _training(facts: RunFacts) -> str:
    order = facts.variants
    rows = []
    for variant in order:
        st = facts.pretrain.get(variant)
        if st is None:
            if variant in facts.curves:
                partial = '<span class="state-partial">in progress: metrics so far, no '
                partial += "_manifest.json yet</span>"
                rows.append((variant_label(variant, order), Html(partial)))
            elif variant in VARIANTS:
                rows.append((variant_label(variant, order), Html(not_run_cell("pretrain"))))
            continue
        rows.append(
            (
                variant_label(variant, order),
                fmt_int(st.get("parameters")),
                fmt_int(st.get("steps")),
                fmt_int(st.get("tokens")),
                f"{fmt_float(st.get('first_loss'))} → {fmt_float(st.get('last_loss'))}",
                fmt_float(st.get("tokens_per_s"), 0),
                fmt_float(st.get("seconds"), 1),
                st.get("device", "—"),
            )
        )
    headers = (
        "variant",
        "parameters",
        "steps",
        "tokens",
        "loss first → last",
        "tokens/s",
        "seconds",
        "device",
    )
    body = table(headers, rows, (False, True, True, True, True, True, True, False))
    if facts.curves:
        body += figure(
            figures.loss_curves(facts.curves, order),
            "loss",
            "Training loss against tokens seen (pretrain metrics.jsonl). Losses of different "
            "mixes are on different text, so the curves compare how each trains, not which "
            "model is better.",
        )
    state = "done" if all(facts.pretrain.get(v) for v in facts.run_variants) else "partial"
    if not facts.curves and not any(facts.pretrain.values()):
        state, body = "not-run", not_run("pretrain (no models/<variant>/)") + body
    return section("training", "Training", state, body)


def _metric_order(metrics: Iterable[str]) -> list[str]:
    ms = list(dict.fromkeys(metrics))
    return [m for m in METRIC_ORDER if m in ms] + sorted(m for m in ms if m not in METRIC_ORDER)


def _base_label() -> Html:
    """The untouched base model's row (eval/base.json), above the variants continued from it."""
    color = figures.variant_color(BASE_EVAL, ())
    return Html(
        f'<span class="swatch" style="background:{color}"></span>base '
        '<span class="muted">(before continued pre-training)</span>'
    )


def _eval_row(label: Html, res: dict[str, Any], metrics: Sequence[str]) -> tuple[Any, ...]:
    """One model's scores on one task: each metric ± stderr, shots, items scored, items."""
    cells = []
    for m in metrics:
        v, s = res["metrics"].get(m), res["stderr"].get(m)
        cells.append("—" if v is None else fmt_float(v) + ("" if s is None else f" ± {s:.3f}"))
    return (
        label,
        *cells,
        _dash(res.get("num_fewshot")),
        fmt_int(res.get("num_samples")),
        fmt_int(res.get("num_items")),
    )


def _evaluation(facts: RunFacts) -> str:
    order = facts.variants
    evaluated = {v: e for v, e in facts.evaluate.items() if e is not None}
    base = facts.base_evaluate  # the base model before continued pre-training, or None
    everything = [*evaluated.values(), *([base] if base is not None else [])]
    if not everything:
        return section("evaluation", "Evaluation", "not-run", not_run("evaluate (no eval/*.json)"))
    probe_tasks = [t for t, _ in PROBE_METRICS]
    tasks = sorted(
        {t for e in everything for t in e["tasks"]},
        key=lambda t: (probe_tasks.index(t) if t in probe_tasks else len(probe_tasks), t),
    )
    body = ""
    if base is not None:
        body += (
            f"<p><b>base</b> is <code>{esc(facts.base_model or '?')}</code> as given, evaluated "
            "once before continued pre-training; every variant below it is that model after "
            "pre-training on its mix.</p>"
        )
    groups = []
    for task in tasks:
        metrics = _metric_order(
            m for e in everything for m in (e["tasks"].get(task) or {}).get("metrics", {})
        )
        rows = []
        base_res = base["tasks"].get(task) if base is not None else None
        if base_res is not None:
            rows.append(_eval_row(_base_label(), base_res, metrics))
        for variant in order:
            ev = facts.evaluate.get(variant)
            res = ev["tasks"].get(task) if ev else None
            if res is None:
                if variant in VARIANTS:
                    rows.append((variant_label(variant, order), Html(not_run_cell("evaluate"))))
                continue
            rows.append(_eval_row(variant_label(variant, order), res, metrics))
        chance = facts.chance.get(task)
        if chance is not None:
            rows.append((Html('<span class="muted">chance (1/options)</span>'), fmt_float(chance)))
        body += f"<h3><code>{esc(task)}</code></h3>" + table(
            ("variant", *metrics, "shots", "items scored", "items in task"),
            rows,
            (False, *[True] * (len(metrics) + 3)),
        )
        for m in metrics:
            scores = {}
            if base_res is not None and 0 <= base_res["metrics"].get(m, -1) <= 1:
                scores[BASE_EVAL] = (base_res["metrics"][m], base_res["stderr"].get(m))
            for variant in order:
                ev = facts.evaluate.get(variant)
                res = ev["tasks"].get(task) if ev else None
                if res and m in res["metrics"] and 0 <= res["metrics"][m] <= 1:
                    scores[variant] = (res["metrics"][m], res["stderr"].get(m))
            if scores:
                chance = facts.chance.get(task) if m in ("acc", "acc_norm") else None
                groups.append((task, m, scores, chance))
    versions = sorted({str(e.get("lm_eval_version")) for e in everything})
    limits = sorted({e["limit"] for e in everything if e.get("limit") is not None})
    note = f"lm-evaluation-harness {', '.join(versions)}."
    if limits:
        note += f" Evaluated with limit={', '.join(map(str, limits))} items per task (a subset)."
    body += f'<p class="muted">{esc(note)}</p>'
    substitutions = sorted({s for e in everything for s in e.get("split_substitutions", [])})
    if substitutions:  # the paper-eval asset scores some tasks on other splits than lm-eval
        items = "".join(f"<li>{esc(s)}</li>" for s in substitutions)
        body += f'<p class="muted">Split substitutions (paper-eval asset):</p><ul>{items}</ul>'
    if groups:
        body = (
            figure(
                figures.eval_bars(groups),
                "eval",
                "Scores per task and metric (percent), error bars ±1 standard error as "
                "reported by lm-eval.",
            )
            + body
        )
    if base is not None:
        body += _flipped(facts, tasks)
    state = "done" if all(facts.evaluate.get(v) for v in facts.run_variants) else "partial"
    return section("evaluation", "Evaluation", state, body)


def _flipped(facts: RunFacts, tasks: Sequence[str]) -> str:
    """Per generative task: which questions each continued variant gained or lost vs base."""
    base = facts.base_evaluate or {"tasks": {}}
    out = ""
    for task in tasks:
        before = (base["tasks"].get(task) or {}).get("answers") or []
        if not before:
            continue
        rows, examples = [], ""
        for variant in facts.variants:
            ev = facts.evaluate.get(variant)
            after = ((ev or {}).get("tasks", {}).get(task) or {}).get("answers") or []
            if not after:
                continue
            f = flips(before, after)
            rows.append(
                (variant_label(variant, facts.variants), fmt_int(f["gained"]), fmt_int(f["lost"]),
                 fmt_int(f["kept"]), fmt_int(f["never"]), f"{f['gained'] - f['lost']:+d}")
            )  # fmt: skip
            for kind in ("gained", "lost"):
                shown = f[f"{kind}_examples"]
                if not shown:
                    continue
                cells = [
                    (_short(str(e["question"]), 160), _short(_gold(e["target"]), 80),
                     _short(str(e["before"]), 80), _short(str(e["after"]), 80))
                    for e in shown
                ]  # fmt: skip
                examples += f"<h5>{esc(variant)}: {kind} ({len(shown)} of {f[kind]})</h5>" + table(
                    ("question", "gold", "base replied", f"{variant} replied"), cells
                )
        if rows:
            out += f"<h4>Questions that flipped: <code>{esc(task)}</code></h4>" + table(
                ("variant", "gained", "lost", "right both", "wrong both", "net"),
                rows,
                (False, True, True, True, True, True),
            )
            out += examples
    return out


def _gold(target: Any) -> str:
    """A generative task's gold answer(s) as one line."""
    if isinstance(target, list):
        return " | ".join(str(t) for t in target)
    return str(target)


def _skipped(facts: RunFacts, stage: str, ident: str, title: str) -> str | None:
    if stage not in facts.left_out:
        return None
    body = f'<p class="muted">left out by the config (<code>{stage}: null</code>).</p>'
    return section(ident, title, "skipped", body)


def _tuning(facts: RunFacts) -> str:
    title = "Instruction tuning: does instruction pre-training gain more?"
    left_out = _skipped(facts, "tune", "tuning", title)
    if left_out:
        return left_out
    tune = tuning(facts)
    if tune is None:
        return section("tuning", title, "not-run", not_run("tune (no eval/tuned/<variant>.json)"))
    task, metric = tune["task"], tune["metric"]
    order = facts.variants
    rows = []
    for variant in VARIANTS:
        row = tune["variants"].get(variant)
        if row is None:
            rows.append((variant_label(variant, order), Html(not_run_cell("tune")), "", "", ""))
            continue
        before, after = row["before"], row["after"]
        gain = row["gain_points"]
        err = row["gain_stderr_points"]
        steps = (facts.tuned.get(variant) or {}).get("steps")
        rows.append(
            (
                variant_label(variant, order),
                "—" if before is None else fmt_pct(before["value"]),
                fmt_pct(after["value"]),
                "—"
                if gain is None
                else f"{fmt_points(gain)}" + ("" if err is None else f" ± {err:.1f}"),
                fmt_int(steps),
            )
        )
    diff = tune["instruct_gain_minus_vanilla_gain_points"]
    err = tune["instruct_gain_minus_vanilla_gain_stderr_points"]
    if diff is None:
        verdict = "<p>Not both of vanilla and instruct were tuned and evaluated yet.</p>"
    else:
        noise = err is not None and abs(diff) <= err
        amount = f"{abs(diff):.1f} points {'more' if diff >= 0 else 'less'} than vanilla"
        if noise:
            word = f"{amount}, within one standard error: this run cannot tell"
        elif diff > 0:
            word = f"{amount}, as the paper found"
        else:
            word = f"{amount}, unlike the paper"
        sign = "" if noise else "pos" if diff > 0 else "neg" if diff < 0 else ""
        verdict = (
            f'<div class="cards"><div class="card" data-gap="tuning-instruct-minus-vanilla">'
            "<h4>gain of instruct − gain of vanilla</h4>"
            f'<div class="big {sign}">{esc(fmt_points(diff))} points</div>'
            f'<div class="muted">± {esc(fmt_float(err, 1))} (stderr)</div></div></div>'
            f"<p>From the same tuning, instruct PT gained {esc(word)}.</p>"
        )
    body = (
        f"<p>Every pre-trained variant is instruction-tuned the same way (same data, steps "
        f"and seed: the open questions of the <em>augment</em> entities as chats, loss on the "
        f"answers only), then scored again on <code>{esc(task)}</code> "
        f"(<code>{esc(metric)}</code>), whose <em>probe</em> entities the tuning never names. "
        "The paper found that instruction pre-trained models gain more from later tuning.</p>"
        + verdict
        + table(
            ("variant", "before tuning", "after tuning", "gain (points)", "tuning steps"),
            rows,
            (False, True, True, True, True),
        )
        + '<p class="muted">A single run per variant: differences of a few points are within '
        "training noise (see benchmarks/RESULTS.md).</p>"
    )
    done = all(tune["variants"].get(v) for v in facts.run_variants)
    return section("tuning", title, "done" if done else "partial", body)


def _magpie(facts: RunFacts) -> str:
    title = "Magpie: instructions written by the tuned instruct model"
    left_out = _skipped(facts, "magpie", "magpie", title)
    if left_out:
        return left_out
    st = facts.magpie
    if st is None:
        return section("magpie", title, "not-run", not_run("magpie (no magpie/_manifest.json)"))
    dropped = st.get("dropped") or {}
    rows = [
        ("queries sampled", fmt_int(st.get("queries_sampled"))),
        ("queries that ended their turn", fmt_int(st.get("queries_ended"))),
        ("queries kept by the filters", fmt_int(st.get("queries_kept"))),
        ("instruction records written", fmt_int(st.get("records"))),
        ("well-formed share (records / queries)", fmt_pct(st.get("well_formed_share"))),
        ("records whose instruction ends in “?”", fmt_int(st.get("question_mark_records"))),
    ]
    rows += [(f"dropped: {reason}", fmt_int(n)) for reason, n in sorted(dropped.items())]
    samples = table(
        ("instruction", "response"),
        [(_short(r["instruction"]), _short(r["output"])) for r in facts.magpie_records],
        (False, False),
    )
    body = (
        "<p>Magpie (Xu et al. 2024): the tuned model is given only the opening of its chat "
        f"template, <code>{esc(st.get('prefix'))}</code>, writes a question by itself "
        "(temperature 1, cut at the end of the user turn) and answers it greedily. "
        "The records are ready for <code>instructpt sft</code>.</p>"
        + table(("", "count"), rows, (False, True))
        + '<p class="muted">The filters check shape (the turn ended, length, repetition, '
        "refusals, near-duplicates), not sense: read the records.</p>"
        + (f"<h3>The first records</h3>{samples}" if facts.magpie_records else "")
    )
    return section("magpie", title, "done", body)


def _short(text: str, width: int = 300) -> str:
    return text if len(text) <= width else text[:width] + "…"


def _clip(text: str) -> str:
    if len(text) <= MAX_EXAMPLE_CHARS:
        return esc(text)
    more = len(text) - MAX_EXAMPLE_CHARS
    return (
        esc(text[:MAX_EXAMPLE_CHARS]) + f'\n<span class="muted">… ({more:,} more characters)</span>'
    )


def _examples(facts: RunFacts) -> str:
    title = "Cooked examples beside their raw text"
    if facts.cook is None:
        return section("examples", title, "not-run", not_run("cook (no cooked/_manifest.json)"))
    if not facts.examples:
        return section(
            "examples", title, "not-run", '<p class="muted">no instruction-augmented record</p>'
        )
    body = (
        '<p class="muted">The raw texts a cooked record was made from (its lineage: linked '
        "texts of one slot, oldest first) and the pre-training text cooked from them and their "
        "synthesized pairs.</p>"
    )
    for ex in facts.examples:
        raw = "".join(
            f"<h4>raw <code>{esc(i)}</code></h4>"
            + ("<pre>" + _clip(t) + "</pre>" if t is not None else not_run("raw text not found"))
            for i, t in ex["raw"]
        )
        templates = ", ".join(ex["templates"]) or "—"
        body += (
            f'<div class="example" data-example="{esc(ex["id"])}"><div>{raw}</div>'
            f"<div><h4>cooked <code>{esc(ex['id'])}</code> (templates {esc(templates)})</h4>"
            f"<pre>{_clip(ex['text'])}</pre></div></div>"
        )
    return section("examples", title, "done", body)


def _config(facts: RunFacts) -> str:
    if facts.config_text is None:
        return section("config", "Config", "not-run", not_run("no config.yaml in the run"))
    body = (
        '<p class="muted">The resolved run config (<code>config.yaml</code>), as written '
        "before work started.</p>"
        f'<pre class="whole">{esc(facts.config_text)}</pre>'
    )
    return section("config", "Config", "done", body)
