"""scripts/package builds the .vsix with tfx-cli: no warning, the task files and every
platform's multi-call aib inside; beside it the per-target folders with the steps as hard links,
their archives and SHA256SUMS; a tfx warning or a missing binary fails it.

The binaries packaged here are PLACEHOLDER scripts made in the test's temp dir (the real ones are
~160 MB debug builds); they never leave it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import subprocess
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

PLATFORMS = {
    "linux-x64": "x86_64-unknown-linux-musl",
    "linux-arm64": "aarch64-unknown-linux-musl",
    "win32-x64": "x86_64-pc-windows-gnu",
    "darwin-x64": "x86_64-apple-darwin",
    "darwin-arm64": "aarch64-apple-darwin",
}
STEPS = ["remove-templates", "deploy-infra", "upload-scripts", "trigger-build", "wait-for-build"]
SOURCES = ["scripts/package", "scripts/lib/cross.sh", "task.json", "shim/index.js", "vss-extension.json", "images/icon.png",
           "docs/marketplace.md", "Cargo.toml"]


def placeholder_bins(tmp_path: Path) -> list[str]:
    """--bin-dir arguments for every platform, each folder holding a PLACEHOLDER aib."""
    args = []
    for platform in PLATFORMS:
        folder = tmp_path / "PLACEHOLDER-binaries-not-aib" / platform
        folder.mkdir(parents=True)
        exe = ".exe" if platform.startswith("win32") else ""
        (folder / f"aib{exe}").write_text(f"PLACEHOLDER {platform} aib: not an aib binary\n")
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
    """`scripts/package` makes aib-<version>.vsix with the task, the shim, every platform's aib, icon and overview, and tfx prints no warning."""
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
            expected.add(f"task/bin/{platform}/aib{exe}")
        assert expected <= names, sorted(expected - names)
        # One binary per platform: the shim runs `aib <step>`, so no step copies inflate the .vsix.
        assert not {n for n in names if n.startswith("task/bin/") and not n.endswith("/")} - expected
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


def test_a_missing_binary_fails_the_package(tmp_path):
    """A platform folder without its aib is refused, naming the file."""
    bins = placeholder_bins(tmp_path)
    (tmp_path / "PLACEHOLDER-binaries-not-aib" / "linux-x64" / "aib").unlink()
    res = package(ROOT, "--platforms", "linux-x64", "--out", str(tmp_path / "out"), *bins)
    assert res.returncode != 0
    assert "linux-x64/aib is missing" in res.stderr


def test_archives_carry_the_steps_as_hard_links_and_checksums_cover_them(tmp_path):
    """Each target's folder and tar.gz hold aib and the five steps as hard links to it (stored
    once), and SHA256SUMS lists every archive and binary with its real checksum."""
    out = tmp_path / "out"
    res = package(ROOT, "--no-vsix", "--out", str(out), *placeholder_bins(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    assert not list(out.glob("*.vsix"))
    sums = {}
    for line in (out / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        sums[name] = digest
    for platform, target in PLATFORMS.items():
        exe = ".exe" if "windows" in target else ""
        folder = out / target
        aib = folder / f"aib{exe}"
        for step in STEPS:
            assert (folder / f"{step}{exe}").stat().st_ino == aib.stat().st_ino, f"{target}/{step}{exe}"
        archive = out / f"aib-{target}.tar.gz"
        with tarfile.open(archive) as tar:
            members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {f"aib{exe}", *(f"{step}{exe}" for step in STEPS)}, sorted(members)
        assert sum(1 for m in members.values() if m.isfile()) == 1
        assert all(m.islnk() and m.linkname == f"aib{exe}" for n, m in members.items() if n != f"aib{exe}")
        for name, path in [(archive.name, archive), (f"{target}/aib{exe}", aib), (f"{target}/upload-scripts{exe}", folder / f"upload-scripts{exe}")]:
            assert sums.get(name) == hashlib.sha256(path.read_bytes()).hexdigest(), name
