"""scripts/package builds the .vsix with tfx-cli: no warning, the task files and every
platform's binaries inside; a tfx warning or a missing binary fails it.

The binaries packaged here are PLACEHOLDER scripts made in the test's temp dir (the real ones are
~160 MB debug builds); they never leave it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

PLATFORMS = ["linux-x64", "linux-arm64", "win32-x64", "darwin-x64", "darwin-arm64"]
BINARIES = ["aib", "remove-templates", "deploy-infra", "upload-scripts", "trigger-build", "wait-for-build"]
SOURCES = ["scripts/package", "task.json", "shim/index.js", "vss-extension.json", "images/icon.png",
           "docs/marketplace.md", "Cargo.toml"]


def placeholder_bins(tmp_path: Path) -> list[str]:
    """--bin-dir arguments for every platform, each folder holding PLACEHOLDER binaries."""
    args = []
    for platform in PLATFORMS:
        folder = tmp_path / "PLACEHOLDER-binaries-not-aib" / platform
        folder.mkdir(parents=True)
        exe = ".exe" if platform.startswith("win32") else ""
        for name in BINARIES:
            (folder / f"{name}{exe}").write_text(f"PLACEHOLDER {platform} {name}: not an aib binary\n")
        args += ["--bin-dir", f"{platform}={folder}"]
    return args


def package(tree: Path, *args: str) -> subprocess.CompletedProcess:
    assert shutil.which("tfx"), "tfx is not on PATH (tools/npm; scripts/test installs it)"
    return subprocess.run([str(tree / "scripts" / "package"), *args], capture_output=True, text=True, check=False)


def source_copy(tmp_path: Path) -> Path:
    """The files scripts/package reads, copied so a test can break one."""
    tree = tmp_path / "tree"
    for rel in SOURCES:
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, tree / rel)
    return tree


def test_package_builds_the_vsix_with_every_platform_and_no_warning(tmp_path):
    """`scripts/package` makes aib-<version>.vsix with the task, the shim, every platform's six binaries, icon and overview, and tfx prints no warning."""
    out = tmp_path / "out"
    res = package(ROOT, "--version", "1.4.2", "--out", str(out), *placeholder_bins(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "warning:" not in (res.stdout + res.stderr).lower()
    vsix = out / "aib-1.4.2.vsix"
    with zipfile.ZipFile(vsix) as z:
        names = set(z.namelist())
        expected = {"task/task.json", "task/shim/index.js", "images/icon.png", "docs/marketplace.md", "extension.vsixmanifest"}
        for platform in PLATFORMS:
            exe = ".exe" if platform.startswith("win32") else ""
            expected |= {f"task/bin/{platform}/{name}{exe}" for name in BINARIES}
        assert expected <= names, sorted(expected - names)
        task = json.loads(z.read("task/task.json"))
        # The task keeps its major version; minor and patch follow the extension.
        assert task["version"] == {"Major": 1, "Minor": 4, "Patch": 2}
        assert task["execution"]["Node24"]["target"] == "shim/index.js"
        assert z.read("task/shim/index.js") == (ROOT / "shim" / "index.js").read_bytes()
        assert 'Version="1.4.2"' in z.read("extension.vsixmanifest").decode()


def test_package_with_fewer_platforms_lists_only_those(tmp_path):
    """`--platforms linux-x64` packages that platform alone (a development package)."""
    out = tmp_path / "out"
    bins = placeholder_bins(tmp_path)
    res = package(ROOT, "--platforms", "linux-x64", "--out", str(out), *bins)
    assert res.returncode == 0, res.stdout + res.stderr
    [vsix] = out.glob("aib-*.vsix")
    with zipfile.ZipFile(vsix) as z:
        platforms = {n.split("/")[2] for n in z.namelist() if n.startswith("task/bin/") and n.count("/") >= 3}
    assert platforms == {"linux-x64"}


def test_a_tfx_warning_fails_the_package(tmp_path):
    """tfx only warns about a bad task.json (and exits 0); scripts/package fails on the warning and leaves no .vsix."""
    tree = source_copy(tmp_path)
    task = json.loads((tree / "task.json").read_text())
    task["friendlyName"] = "Azure VM Image Builder with a name far longer than forty characters"
    (tree / "task.json").write_text(json.dumps(task))
    out = tmp_path / "out"
    res = package(tree, "--platforms", "linux-x64", "--out", str(out), *placeholder_bins(tmp_path))
    assert res.returncode != 0, res.stdout
    assert "warning:" in (res.stdout + res.stderr).lower()
    assert not list(out.glob("*.vsix"))


@pytest.mark.parametrize("missing", ["upload-scripts", "aib"])
def test_a_missing_binary_fails_the_package(tmp_path, missing):
    """A platform folder without one of the six binaries is refused, naming the file."""
    bins = placeholder_bins(tmp_path)
    (tmp_path / "PLACEHOLDER-binaries-not-aib" / "linux-x64" / missing).unlink()
    res = package(ROOT, "--platforms", "linux-x64", "--out", str(tmp_path / "out"), *bins)
    assert res.returncode != 0
    assert f"linux-x64/{missing} is missing" in res.stderr
