"""The `instructpt` command: one sub-command per stage, plus `run` for the whole job.

Each stage command takes `--config FILE` (YAML) and one flag per config
field; flags override the file. Errors a user can fix are printed as one
clear message (no traceback) with exit status 2.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any

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
        # obey --progress. Read by huggingface_hub when transformers is first imported.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
        bars_only_on_a_terminal()


def bars_only_on_a_terminal() -> None:
    """Make every tqdm bar follow tqdm's own `disable=None` rule: shown only on a terminal.

    lm-eval passes `disable=False` explicitly (rank 0), which beats both tqdm's
    TTY check and TQDM_DISABLE (read only when tqdm is imported, before `main`
    runs), so a log file got its bars as long carriage-return lines. Our own
    bars already pass None or True and are unchanged.
    """
    init = tqdm.std.tqdm.__init__
    if getattr(init, "_instructpt_tty_only", False):
        return

    @functools.wraps(init)
    def tty_only(self: Any, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("disable") is False:
            kwargs["disable"] = None  # tqdm: off when its file is not a terminal
        init(self, *args, **kwargs)

    tty_only._instructpt_tty_only = True  # type: ignore[attr-defined]
    tqdm.std.tqdm.__init__ = tty_only  # type: ignore[method-assign]


for command in (
    data.world, data.ingest, data.mine, data.filter_, data.cook, data.mix, data.tokenizer,
    data.tokenize, synth.train_synthesizer, synth.synthesize, synth.plan, train.pretrain,
    train.continue_, train.sft, evaluate.evaluate, evaluate.report, evaluate.wiki_probe,
    magpie.magpie, run.run, assets.assets,
):  # fmt: skip
    main.add_command(command)


if __name__ == "__main__":
    main()
