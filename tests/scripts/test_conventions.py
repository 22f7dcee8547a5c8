"""The conventions of issue 13 in every customization script: strict error handling, one version
table at the top, the [aib] log line, retries, the image manifest, no tracing; and the software
the issue lists is in the tables of the right OS."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import script_checks

UPLOADS = script_checks.REPO / "scripts" / "uploads"
SCRIPTS = script_checks.upload_scripts(UPLOADS)
MODULES = {
    "PowerShellGet", "Pester", "PSScriptAnalyzer", "powershell-yaml", "Az", "Logging", "PoshRSJob",
    "ThreadJob", "JWTDetails", "OMSIngestionAPI", "AzureAD", "ImportExcel",
}


def table(os_name: str) -> dict[str, str]:
    """Every component pinned by the scripts of one OS folder, with its version."""
    gen = script_checks.generator()
    return {
        key: value
        for script in script_checks.upload_scripts(UPLOADS)
        if script.parent.name == os_name
        for key, value, _line in gen.read_version_table(script)
    }


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_script_follows_the_conventions(script: Path) -> None:
    """The script passes every convention check."""
    assert script_checks.convention_problems(script) == []


def test_linux_tables_pin_what_the_issue_lists() -> None:
    """Linux gets PowerShell, Azure CLI, .NET SDK and runtime, the dotnet nuget source, a pinned
    Terraform, azcopy, the twelve modules and the two Azure CLI extensions."""
    linux = table("linux")
    for key in ("powershell", "azure-cli", "dotnet-sdk", "dotnet-runtime", "nuget-source", "terraform", "azcopy"):
        assert key in linux, key
    assert re.fullmatch(r"\d+\.\d+\.\d+", linux["terraform"]), "Linux Terraform is a pinned version"
    assert {k.removeprefix("psmodule:") for k in linux if k.startswith("psmodule:")} == MODULES
    assert {"azext:azure-devops", "azext:aks-preview"} <= set(linux)


def test_windows_tables_pin_what_the_issue_lists() -> None:
    """Windows gets Chocolatey, Azure CLI, PowerShell 7, the NuGet provider, the latest Terraform,
    azcopy, and the same modules and Azure CLI extensions as Linux."""
    windows, linux = table("windows"), table("linux")
    for key in ("chocolatey", "azure-cli", "powershell", "nuget-provider", "terraform", "azcopy"):
        assert key in windows, key
    assert windows["terraform"] == "latest"
    shared = {k for k in linux if k.startswith(("psmodule:", "azext:"))}
    assert shared == {k for k in windows if k.startswith(("psmodule:", "azext:"))}


def test_every_plain_table_key_is_used_by_its_script() -> None:
    """A plain key in a version table is used again in its script (a dead pin misleads readers)."""
    gen = script_checks.generator()
    for script in SCRIPTS:
        text = script.read_text(encoding="utf-8")
        for key, _value, _line in gen.read_version_table(script):
            if key.startswith(("psmodule:", "azext:")):
                continue
            uses = text.count(f"'{key}'") + text.count(f"[{key}]")
            assert uses >= 2, f"{script.name}: '{key}' is pinned but never used"


def break_copy(tree_copy: Path, relative: str, old: str, new: str) -> Path:
    """Replaces text in a temp copy of a script (failing if the text is not there)."""
    script = tree_copy / "scripts" / "uploads" / relative
    text = script.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {relative}"
    script.write_text(text.replace(old, new, 1), encoding="utf-8")
    return script


LINUX_PS1 = "linux/Initialize-LinuxSoftware.ps1"
WINDOWS_PS1 = "windows/Initialize-WindowsSoftware.ps1"
LINUX_SH = "linux/Install-LinuxPowerShell.sh"

BREAKAGES = [
    ("no-version-table", LINUX_PS1, "$Versions = [ordered]@{", "$Pins = [ordered]@{", "no version table"),
    ("second-table", WINDOWS_PS1, "# Other settings (not versions).",
     "$Versions = [ordered]@{\n    'extra' = '1.0'\n}", "2 version tables"),
    ("duplicate-key", LINUX_PS1, "    'azcopy'                   = 'latest'",
     "    'azcopy'                   = 'latest'\n    'azcopy' = '10.0.0'", "appears 2 times"),
    ("bad-value", WINDOWS_PS1, "'terraform'                = 'latest'", "'terraform' = 'the newest one'",
     "neither 'latest' nor a version"),
    ("junk-in-table", LINUX_SH, '[powershell]="latest"', '[powershell]="latest"\n  powershell=latest',
     "not a version table entry"),
    ("no-stop", WINDOWS_PS1, "$ErrorActionPreference = 'Stop'", "$ErrorActionPreference = 'Continue'",
     "$ErrorActionPreference = 'Stop'"),
    ("no-strict-mode", LINUX_PS1, "Set-StrictMode -Version Latest", "# no strict mode", "Set-StrictMode"),
    ("no-pipefail", LINUX_SH, "set -euo pipefail", "set -e", "set -euo pipefail"),
    ("other-log-format", WINDOWS_PS1, "'[aib] component={0} status={1} version={2} seconds={3}'",
     "'{0}: {1} {2} ({3}s)'", "log line format"),
    ("other-log-format-sh", LINUX_SH, "'[aib] component=%s status=%s version=%s seconds=%s\\n'",
     "'%s %s %s %s\\n'", "log line format"),
    ("no-retry", LINUX_PS1, "function Invoke-WithRetry {", "function Invoke-Once {", "retry function"),
    ("no-retry-sh", LINUX_SH, "retry() {", "once() {", "retry function"),
    ("no-manifest-path", LINUX_PS1, "'/etc/aib/image-manifest.json'", "'/tmp/software.json'",
     "image manifest /etc/aib/image-manifest.json"),
    ("no-manifest-field", WINDOWS_PS1, "schemaVersion = 1", "formatVersion = 1", "field 'schemaVersion'"),
    ("tracing-sh", LINUX_SH, "set -euo pipefail", "set -euo pipefail\nset -x", "command tracing"),
    ("tracing-ps1", WINDOWS_PS1, "Set-StrictMode -Version Latest", "Set-StrictMode -Version Latest\nSet-PSDebug -Trace 1",
     "command tracing"),
    ("table-after-functions", LINUX_SH, "declare -A VERSIONS=(", "early() { :; }\ndeclare -A VERSIONS=(",
     "belong at the top"),
]


@pytest.mark.parametrize(
    ("relative", "old", "new", "expected"),
    [b[1:] for b in BREAKAGES],
    ids=[b[0] for b in BREAKAGES],
)
def test_convention_check_flags_a_broken_copy(tree_copy: Path, relative: str, old: str, new: str, expected: str) -> None:
    """A copy that breaks one convention fails the check with a message saying which."""
    script = break_copy(tree_copy, relative, old, new)
    problems = script_checks.convention_problems(script)
    assert any(expected in p for p in problems), problems


def shared_block(text: str, header: str) -> str | None:
    """The section that starts with the line `header` and ends before the next `# --- ` line."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(header)]
    if not starts:
        return None
    end = next((i for i in range(starts[0] + 1, len(lines)) if lines[i].startswith("# --- ")), len(lines))
    return "\n".join(lines[starts[0]:end])


SHARED_BLOCKS = [
    ("# --- Helpers (the same in every aib customization script", [p for p in SCRIPTS if p.suffix == ".ps1"]),
    ("# --- PowerShell modules and Azure CLI extensions (the same in both", [p for p in SCRIPTS if p.name.startswith("Initialize-")]),
]


@pytest.mark.parametrize(("header", "scripts"), SHARED_BLOCKS, ids=["helpers", "modules-and-extensions"])
def test_shared_powershell_blocks_are_identical_in_every_script(header: str, scripts: list[Path]) -> None:
    """Each script is uploaded alone, so helpers are copied; the copies must not drift apart."""
    assert len(scripts) >= 2
    blocks = {p.name: shared_block(p.read_text(encoding="utf-8"), header) for p in scripts}
    assert all(blocks.values()), [name for name, block in blocks.items() if not block]
    first = next(iter(blocks.values()))
    assert [name for name, block in blocks.items() if block != first] == []
