"""Every .ps1 parses with tree-sitter-powershell without an ERROR or MISSING node (PowerShell
itself cannot be installed on this machine kind, so this is the syntax check)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import script_checks

PS1 = [p for p in script_checks.upload_scripts(script_checks.REPO / "scripts" / "uploads") if p.suffix == ".ps1"]


def test_there_are_powershell_scripts_to_check() -> None:
    """The parametrized parse tests below cover the four scripts issue 13 asks for."""
    names = {p.name for p in PS1}
    assert {
        "Initialize-LinuxSoftware.ps1",
        "Install-WindowsPowerShell.ps1",
        "Initialize-WindowsSoftware.ps1",
    } <= names


@pytest.mark.parametrize("script", PS1, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_powershell_script_parses_without_errors(script: Path) -> None:
    """The script has no syntax error anywhere."""
    assert script_checks.powershell_parse_problems(script) == []


@pytest.mark.parametrize("script", PS1, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_parse_check_reports_the_line_of_a_syntax_error(script: Path, tmp_path: Path) -> None:
    """A copy with an unclosed condition fails the check, and the report names that line."""
    lines = script.read_text(encoding="utf-8").splitlines()
    broken_at = len(lines) // 2
    lines.insert(broken_at, "if ($true { Write-Host 'unclosed condition' }")
    copy = tmp_path / script.name
    copy.write_text("\n".join(lines) + "\n", encoding="utf-8")
    problems = script_checks.powershell_parse_problems(copy)
    assert problems, "a syntax error went unnoticed"
    reported = {int(m.group(1)) for p in problems if (m := re.search(r"\.ps1:(\d+):", p))}
    assert broken_at + 1 in reported, problems


def test_parse_check_reports_a_missing_closing_brace(tmp_path: Path) -> None:
    """A function whose closing brace was deleted fails the check."""
    copy = tmp_path / "Broken.ps1"
    copy.write_text("function Get-Thing {\n    param([string]$Name)\n    Write-Host $Name\n\nGet-Thing -Name x\n")
    assert script_checks.powershell_parse_problems(copy) != []


SH = [p for p in script_checks.upload_scripts(script_checks.REPO / "scripts" / "uploads") if p.suffix == ".sh"]


@pytest.mark.parametrize("script", SH, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_powershell_embedded_in_bash_parses(script: Path, tmp_path: Path) -> None:
    """The PowerShell a bash script hands to `pwsh -Command` parses too."""
    assert script_checks.embedded_powershell(script), "expected embedded PowerShell (the manifest writer)"
    assert script_checks.embedded_powershell_problems(script, tmp_path) == []


def test_broken_embedded_powershell_is_reported_with_the_bash_line(tmp_path: Path) -> None:
    """A syntax error inside the embedded program is reported at its line in the bash file."""
    script = SH[0]
    text = script.read_text(encoding="utf-8")
    broken = text.replace("if (Test-Path $env:AIB_MANIFEST) {", "if (Test-Path $env:AIB_MANIFEST {", 1)
    assert broken != text
    copy = tmp_path / script.name
    copy.write_text(broken, encoding="utf-8")
    line = broken[: broken.index("if (Test-Path $env:AIB_MANIFEST {")].count("\n") + 1
    problems = script_checks.embedded_powershell_problems(copy, tmp_path)
    assert problems, "a syntax error in the embedded PowerShell went unnoticed"
    assert any(f"{script.name}:{line}:" in p for p in problems), (line, problems)


WINDOWS = [p for p in PS1 if p.parent.name == "windows"]


@pytest.mark.parametrize("script", WINDOWS, ids=lambda p: p.name)
def test_windows_scripts_use_only_windows_powershell_5_1_syntax(script: Path) -> None:
    """Image Builder runs Windows scripts with Windows PowerShell 5.1: no PowerShell 7-only syntax."""
    assert script_checks.windows_powershell_problems(script) == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("$name = $env:AGENT_NAME ?? 'agent'", "??"),
        ("$length = $value?.Length", "?."),
        ("Invoke-Thing && Invoke-Other", "&&"),
        ("Set-Content -Path $p -Value $v -Encoding utf8NoBOM", "utf8NoBOM"),
        ("1..3 | ForEach-Object -Parallel { $_ }", "-Parallel"),
        ("if ($IsWindows) { 'x' }", "$IsWindows"),
    ],
)
def test_powershell_7_syntax_in_a_windows_script_is_reported(tmp_path: Path, line: str, expected: str) -> None:
    """A copy of the Windows installer with one PowerShell 7-only construct fails the 5.1 check."""
    script = next(p for p in WINDOWS if p.name == "Initialize-WindowsSoftware.ps1")
    copy = tmp_path / script.name
    copy.write_text(script.read_text(encoding="utf-8") + line + "\n", encoding="utf-8")
    problems = script_checks.windows_powershell_problems(copy)
    assert len(problems) == 1 and expected in problems[0], problems
    assert problems[0].startswith(f"{copy}:{len(copy.read_text().splitlines())}:"), problems


def test_text_inside_strings_and_comments_is_not_syntax(tmp_path: Path) -> None:
    """'??' in a string or a comment is not the operator."""
    copy = tmp_path / "Strings.ps1"
    copy.write_text("Write-Host 'what ?? && $IsWindows'\n# utf8NoBOM is PowerShell 7 only\n")
    assert script_checks.windows_powershell_problems(copy) == []
