"""The report: `report.html` (static, offline, plots as inline SVG) and `summary.json`.

    page = write_report(run_dir)            # runs/<name>/report/report.html
    write_report(run_dir, compare=["runs/demo"])   # with runs/demo's summary beside it

`collect` reads the stats every stage already wrote (never recomputes them),
`summary` turns them into the headline numbers, `figures` draws the plots
with matplotlib, `page` renders the HTML. A stage that has not run is shown
as not run.
"""

from instructpt.report.stage import HTML_NAME, SUMMARY_NAME, write_report

__all__ = ["HTML_NAME", "SUMMARY_NAME", "write_report"]
