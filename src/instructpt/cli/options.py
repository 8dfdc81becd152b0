"""Click options generated from a stage's config model: flags map 1:1 to fields.

Why generated: a flag written by hand drifts from its field (name, type,
default, help). Every option defaults to None, meaning "not given", so only
flags the user typed override the YAML file, and `--no-x` can beat `x: true`.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import click
from pydantic import BaseModel

from instructpt.core.config import PLAIN_NAME, build_config, read_yaml_mapping
from instructpt.core.executor import EXECUTORS, open_executor
from instructpt.errors import InstructptError


def _click_type(annotation: Any) -> tuple[Any, bool]:
    """(click type, multiple) for a field annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _click_type(args[0])
    if origin is Literal:
        return click.Choice([str(a) for a in typing.get_args(annotation)]), False
    if origin in (list, tuple):
        inner, _ = _click_type(typing.get_args(annotation)[0])
        return inner, True
    if annotation in (int, float, str, bool):
        return annotation, False
    return str, False


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _flat_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any]]:
    """(flat name, field) pairs: section field `openai.concurrency` is `openai_concurrency`."""
    out: list[tuple[str, Any]] = []
    for name, field in model.model_fields.items():
        if _is_section(field.annotation):
            out.extend(_flat_fields(field.annotation, f"{prefix}{name}_"))
        else:
            out.append((f"{prefix}{name}", field))
    return out


def config_options(model: type[BaseModel], skip: tuple[str, ...] = ()) -> Callable[[Any], Any]:
    """Decorator adding one option per field of `model` (except `skip`).

    Fields of nested sections get the section name as prefix:
    `openai.concurrency` is `--openai-concurrency`.
    """

    def decorate(func: Any) -> Any:
        for name, field in reversed(_flat_fields(model)):
            if name in skip:
                continue
            flag = name.replace("_", "-")
            help_text = field.description or ""
            if field.is_required():
                help_text += "  [required: flag or config file]"
            else:
                default = field.get_default(call_default_factory=True)
                if default is not None:
                    help_text += f"  [default: {default}]"
            ctype, multiple = _click_type(field.annotation)
            if ctype is bool:
                option = click.option(f"--{flag}/--no-{flag}", name, default=None, help=help_text)
            else:
                option = click.option(
                    f"--{flag}", name, type=ctype, multiple=multiple, default=None, help=help_text
                )
            func = option(func)
        return func

    return decorate


def given(values: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """The flags the user actually gave, as (nested) config overrides."""
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if _is_section(field.annotation):
            prefix = f"{name}_"
            inner = {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}
            section = given(inner, field.annotation)
            if section:
                out[name] = section
            continue
        value = values.get(name)
        if value is None or value == ():
            continue
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


def executor_options(replicas: bool = False) -> Callable[[Any], Any]:
    """`--executor local|ray` and `--ray-address` (plus `--ray-replicas` where engines run).

    Not config fields: where a stage runs never changes what it writes, so it must
    not change the config hash (a run started locally resumes on Ray and back).
    The command receives `executor`: None (local) or a connected `RayExecutor`,
    shut down after the command when it started Ray itself. With Ray, `run_dir`
    is made absolute, since workers need not share this process's directory.
    """

    def decorate(func: Any) -> Any:
        @functools.wraps(func)
        def wrapper(
            *args: Any,
            executor: str,
            ray_address: str | None,
            ray_replicas: int | None = None,
            **kwargs: Any,
        ) -> Any:
            if executor == "ray" and isinstance(kwargs.get("run_dir"), Path):
                kwargs["run_dir"] = kwargs["run_dir"].absolute()
            with open_executor(executor, ray_address, ray_replicas) as running:
                return func(*args, executor=running, **kwargs)

        if replicas:
            wrapper = click.option(
                "--ray-replicas",
                type=click.IntRange(min=1),
                default=None,
                help="Engine replicas (Ray actors) with --executor ray  "
                "[default: as many as the cluster's GPUs (or CPUs) hold; 1 for openai]",
            )(wrapper)
        wrapper = click.option(
            "--ray-address",
            default=None,
            help="Ray cluster for --executor ray: auto (a `ray start` cluster on this node), "
            "HOST:6379 or ray://HOST:10001  [default: RAY_ADDRESS, else a new local Ray]",
        )(wrapper)
        return click.option(
            "--executor",
            type=click.Choice(EXECUTORS),
            default="local",
            show_default=True,
            help="Where shards run: this machine's processes, or a Ray cluster "
            "(pip install 'instructpt[ray]'; see docs/cluster.md). Same output either way.",
        )(wrapper)

    return decorate


CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML file with this stage's keys; flags override it.",
)


RUN_DIR_OPTION = click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/default"),
    show_default=True,
    help="Run directory; the stage writes into its own folder inside it.",
)


OVERWRITE_OPTION = click.option(
    "--overwrite",
    is_flag=True,
    help="Clear the stage folder first (needed when the config or input changed).",
)


def plain_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A --name or --variant becomes one folder under the run directory: no path in it."""
    if value is not None and not re.fullmatch(PLAIN_NAME, value):
        raise click.BadParameter(
            f"{value!r} is not a plain folder name: use letters, digits, '.', '_' and '-', "
            "not starting with '.' (no '/' or '..': the output must stay in the run directory)"
        )
    return value


def load_with_run_defaults(
    model: Any, config_path: Path | None, defaults: dict[str, Any], flags: dict[str, Any]
) -> Any:
    """Config from file + flags, where keys given nowhere default to the run-dir layout."""
    values = read_yaml_mapping(config_path) if config_path is not None else {}
    where = (
        f"{config_path} (or its command-line overrides)" if config_path else "command-line flags"
    )
    return build_config(model, {**defaults, **values}, given(flags, model), where)


def echo_main_rank(lines: list[str]) -> None:
    """Under torchrun every rank runs the command; one report is enough."""
    if os.environ.get("RANK", "0") == "0":
        for line in lines:
            click.echo(line)


class UserErrorGroup(click.Group):
    """Turns user-facing errors into one line and exit 2, Ctrl-C into a resume hint."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InstructptError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("\ninterrupted: rerun the same command to resume where it stopped", err=True)
            sys.exit(130)
