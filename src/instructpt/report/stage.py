"""The report stage: a run directory in, `report.html` + `summary.json` out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from instructpt.core.atomic import atomic_write_text
from instructpt.report.collect import REPORT_DIR, SUMMARY_NAME, collect
from instructpt.report.page import render
from instructpt.report.summary import build_summary

HTML_NAME = "report.html"


def write_report(
    run_dir: Path, out_dir: Path | None = None, compare: Sequence[str | Path] = ()
) -> Path:
    """Write `report.html` and `summary.json` for `run_dir` into `out_dir`; return the HTML path.

    `out_dir` defaults to `run_dir/report/`. Stages that have not run are shown
    (and written to summary.json) as not run; only a missing `run_dir` is an
    error (InputError). `compare`: other run directories whose own
    `report/summary.json` is shown beside this run's (a missing or unreadable
    one as not run, and listed in `problems`). Both files are written
    atomically, summary first, so a report.html on disk always has its
    summary.json beside it. Rerunning on the same run directories writes
    byte-identical files.
    """
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir / REPORT_DIR
    facts = collect(run_dir, compare)
    summary = build_summary(facts)
    text = json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False)
    atomic_write_text(out_dir / SUMMARY_NAME, text + "\n")
    page = out_dir / HTML_NAME
    atomic_write_text(page, render(facts))
    return page
