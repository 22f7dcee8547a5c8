"""Fixtures for the distribution smoke tests: the cross-built binaries laid out as
`scripts/package` lays out dist/ (`<target>/aib[.exe]` plus the steps as hard links).

AIB_DIST_DIR names that folder. scripts/test cross-builds the three Linux-built targets and
packages them there before this suite runs; `AIB_DIST_DIR=dist pytest tests/distribution` runs
the same checks on what `scripts/package` built for release. Without it the suite fails and
says so: a smoke test that is not run proves nothing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The fidelity suite's emulator helpers (binary, process wrapper, stop), loaded under a name
# of their own: both files are called conftest.py.
_spec = importlib.util.spec_from_file_location(
    "emulator_helpers", ROOT / "tests" / "emulator_fidelity" / "conftest.py"
)
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
Emulator, emulator_binary, stop_emulator = _helpers.Emulator, _helpers.emulator_binary, _helpers.stop_emulator

STEPS = ["remove-templates", "deploy-infra", "upload-scripts", "trigger-build", "wait-for-build"]
LINUX_X64 = "x86_64-unknown-linux-musl"
LINUX_ARM64 = "aarch64-unknown-linux-musl"
WINDOWS_X64 = "x86_64-pc-windows-gnu"


@pytest.fixture(scope="session")
def dist() -> Path:
    value = os.environ.get("AIB_DIST_DIR")
    assert value, (
        "AIB_DIST_DIR is not set: run scripts/test (it cross-builds and packages the binaries "
        "first) or `scripts/package --no-vsix` and AIB_DIST_DIR=dist"
    )
    path = Path(value)
    for target in (LINUX_X64, LINUX_ARM64, WINDOWS_X64):
        exe = ".exe" if "windows" in target else ""
        assert (path / target / f"aib{exe}").is_file(), f"{path / target / f'aib{exe}'} is missing"
    return path


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is not on PATH (scripts/test installs it with apt-get; see scripts/lib/cross.sh)"
    return found


@pytest.fixture(scope="session")
def wine_env(tmp_path_factory) -> dict:
    """A private, quiet Wine prefix (made once; its first start takes a few seconds), with the
    bcryptprimitives.dll Debian 12's Wine 8 lacks built into its system32 (wine/ says why)."""
    tool("wine")
    gcc = tool("x86_64-w64-mingw32-gcc")
    prefix = tmp_path_factory.mktemp("wineprefix")
    env = dict(os.environ)
    env.update(
        WINEPREFIX=str(prefix),
        WINEDEBUG="-all",
        # No Mono or Gecko install prompts (the binary needs neither); our DLL over any builtin.
        WINEDLLOVERRIDES="mscoree,mshtml=;bcryptprimitives=n",
    )
    subprocess.run(["wine", "cmd", "/c", "exit"], env=env, capture_output=True, timeout=300, check=False)
    system32 = prefix / "drive_c" / "windows" / "system32"
    assert system32.is_dir(), f"Wine did not create its prefix at {prefix}"
    subprocess.run(
        [gcc, "-shared", "-O2", "-o", str(system32 / "bcryptprimitives.dll"),
         str(Path(__file__).parent / "wine" / "bcryptprimitives.c"), "-ladvapi32"],
        check=True,
    )
    return env


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    """aib-emulator with Azurite, its clock fast and no propagation delays (the steps' tests'
    preset), so deploy-infra takes seconds."""
    state = tmp_path_factory.mktemp("emulator")
    proc = subprocess.Popen(
        [str(emulator_binary()), "--json", "--state-dir", str(state), "--time-scale", "600",
         "--list-lag", "0", "--lro-duration", "6", "--lro-polls", "1", "--lro-retry-after", "0",
         "--rbac-propagation-delay", "0", "--principal-visibility-delay", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"aib-emulator did not start: {proc.stderr.read()}")
    emu = Emulator(proc, json.loads(line))
    yield emu
    stop_emulator(emu)
