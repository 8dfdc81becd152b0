"""The `instructpt` command: one sub-command per stage, plus `run` for the whole job.

Each stage command takes `--config FILE` (YAML) and one flag per config
field; flags override the file. Errors a user can fix are printed as one
clear message (no traceback) with exit status 2.
"""

from __future__ import annotations

import functools
import io
import os
import sys
from typing import Any, TextIO

import click
import tqdm.std

from instructpt import __version__
from instructpt.cli import assets, data, evaluate, magpie, run, synth, train
from instructpt.cli.options import UserErrorGroup


@click.group(cls=UserErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="instructpt")
def main() -> None:
    """Instruction Pre-Training end to end: synthesize, cook, mix, pre-train, evaluate, report.

    \b
    Quick start (the demo world, no download needed):
      instructpt run
    """
    if not sys.stderr.isatty():
        # transformers' and the hub's own bars (loading/saving weights) flood logs; ours
        # print a line a minute. Read by huggingface_hub when transformers is first imported.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
        bars_as_log_lines()


#: Seconds between two progress lines in a log file (a terminal's bars redraw as usual).
LOG_PROGRESS_SECONDS = 60.0


class LogLines(io.TextIOBase):
    """A log file as tqdm's output: each redraw (`\\r...`) becomes one plain line.

    tqdm off a terminal either prints nothing (`disable=None`) or one ever-growing
    carriage-return line; a job under nohup or a batch scheduler wants neither: it wants
    to see, every minute, how far the hour-long synthesis or training has come.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        lines = [part.strip() for part in text.split("\r")]
        if any(lines):
            self.stream.write("".join(f"{line}\n" for line in lines if line))
            self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False


def bars_as_log_lines(interval: float = LOG_PROGRESS_SECONDS) -> None:
    """Off a terminal, every tqdm bar that is not switched off prints a plain line at most
    every `interval` seconds (and its last state) instead of nothing.

    Patched at tqdm's constructor because lm-eval and transformers make their own bars:
    lm-eval passes `disable=False`, which used to put carriage-return lines in logs;
    now they are lines too. Bars switched off (`--no-progress`: `disable=True`) stay off.
    """
    init = tqdm.std.tqdm.__init__
    if getattr(init, "_instructpt_log_lines", False):
        return

    @functools.wraps(init)
    def log_lines(self: Any, *args: Any, **kwargs: Any) -> None:
        file = kwargs.get("file") or sys.stderr
        to_log = kwargs.get("disable") is not True and not _is_terminal(file)
        if to_log:
            kwargs.update(
                file=file if isinstance(file, LogLines) else LogLines(file),
                disable=False,
                ascii=True,
                mininterval=max(float(kwargs.get("mininterval") or 0.1), interval),
            )
        init(self, *args, **kwargs)
        if to_log:
            _refresh_at_most_every_mininterval(self)

    log_lines._instructpt_log_lines = True  # type: ignore[attr-defined]
    tqdm.std.tqdm.__init__ = log_lines  # type: ignore[method-assign]


def _refresh_at_most_every_mininterval(bar: Any) -> None:
    """`set_postfix` and `set_description` redraw at once, past `mininterval`; a stage
    that updates its postfix every batch would write a line per batch into the log."""
    refresh = bar.refresh

    def gated(*args: Any, **kwargs: Any) -> Any:
        now = bar._time()
        if now - bar.last_print_t < bar.mininterval:
            return False
        bar.last_print_t = now
        return refresh(*args, **kwargs)

    bar.refresh = gated


def _is_terminal(file: Any) -> bool:
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


for command in (
    data.world, data.ingest, data.mine, data.filter_, data.cook, data.mix, data.tokenizer,
    data.tokenize, synth.train_synthesizer, synth.synthesize, synth.plan, train.pretrain,
    train.continue_, train.sft, evaluate.evaluate, evaluate.report, evaluate.wiki_probe,
    magpie.magpie, run.run, assets.assets,
):  # fmt: skip
    main.add_command(command)


if __name__ == "__main__":
    main()
