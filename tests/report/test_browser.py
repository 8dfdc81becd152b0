"""The report in a real browser: headless Chromium loads it offline, logs nothing, draws every plot.

How the checks work, without a DevTools client:
- console: Chromium started with `--enable-logging=stderr --v=0` writes every
  console message of the page to stderr as `...:CONSOLE:<line>] "<message>"`.
  The page has no script, and its Content-Security-Policy blocks every
  external load and every script with a console error, so any CONSOLE line
  is a failure (a CDN link, an image file, a script that slipped through
  escaping). The last test proves this check sees such an error.
- figures: `--dump-dom` gives the DOM Chromium built; it must hold one
  `<svg>` inside each expected `<figure class="plot">`.
- pixels: `--screenshot` must not be blank, and the bar colours of the
  evaluation plot (vanilla's grey) and of the token-mix plot (raw text's
  grey) must cover real areas, so the SVGs were drawn, not just parsed.

`make test` installs Chromium from Debian when it runs as root (CI does); elsewhere
without Chromium these tests skip, and the reason says what to install.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from instructpt.report import write_report
from tests.report.test_report import FULL_FIGURES, PageParser, build_run

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (1280, 6000)  # tall enough for every figure of the test run
CONSOLE = re.compile(r":CONSOLE[:(]\d*\)?\]\s*(.*)")
#: Colours drawn only by one plot each (instructpt.report.figures).
VANILLA_BARS = (0x7B, 0x87, 0x94)  # evaluation bars (and tiny legend swatches)
RAW_TOKENS = (0x9A, 0xA5, 0xB1)  # token-mix bars
MIN_AREA_PX = 10_000


def find_browser() -> str | None:
    return next((path for b in BROWSERS if (path := shutil.which(b))), None)


pytestmark = [
    pytest.mark.slow,
    pytest.mark.ci,
    pytest.mark.skipif(
        find_browser() is None,
        reason="no Chromium on PATH: make test installs it as root; else apt-get install chromium",
    ),
]


def load(page: Path, tmp: Path) -> tuple[list[str], str, Path]:
    """Console messages, dumped DOM and screenshot of `page` in headless Chromium."""
    browser = find_browser()
    assert browser is not None
    shot = tmp / "shot.png"
    proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",  # root in containers and CI runners
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            f"--user-data-dir={tmp / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            f"--screenshot={shot}",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.is_file(), f"no screenshot written:\n{proc.stderr[-2000:]}"
    console = [m.group(1) for line in proc.stderr.splitlines() if (m := CONSOLE.search(line))]
    return console, proc.stdout, shot


def area(image, rgb: tuple[int, int, int], tol: int = 6) -> int:
    """Pixels within `tol` of `rgb` in every channel."""
    import numpy as np

    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    return int(np.all(np.abs(pixels - np.array(rgb)) <= tol, axis=-1).sum())


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    return write_report(build_run(tmp_path_factory.mktemp("browser")))


def test_report_renders_in_chromium_without_console_errors_and_with_every_figure(
    report: Path, tmp_path: Path
) -> None:
    from PIL import Image, ImageStat

    console, dom, shot = load(report, tmp_path)
    assert console == [], "console messages:\n" + "\n".join(console)

    parsed = PageParser()
    parsed.feed(dom)
    assert sorted(parsed.figures) == sorted(FULL_FIGURES)
    assert parsed.svgs == len(FULL_FIGURES)
    assert dom.count('<figure class="plot') == dom.count("<svg") == len(FULL_FIGURES)

    image = Image.open(shot).convert("RGB")
    assert image.size == WINDOW
    spread = ImageStat.Stat(image.convert("L")).stddev[0]
    assert spread > 10, f"screenshot looks blank (stddev {spread:.1f})"
    assert area(image, VANILLA_BARS) > MIN_AREA_PX, "evaluation bars not drawn"
    assert area(image, RAW_TOKENS) > MIN_AREA_PX, "token-mix bars not drawn"


def test_console_check_catches_a_page_that_loads_from_outside(report: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    html = report.read_text("utf-8")
    bad.write_text(
        html.replace("</head>", '<link rel="stylesheet" href="https://cdn.invalid/x.css"></head>'),
        "utf-8",
    )
    console, _, _ = load(bad, tmp_path)
    assert any("cdn.invalid" in m and "Content Security Policy" in m for m in console), console
