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
