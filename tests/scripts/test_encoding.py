"""Encodings and line endings: .sh is UTF-8 with LF only, .ps1 is UTF-8, and the Windows scripts
are ASCII (or carry a BOM) because Windows PowerShell 5.1 reads BOM-less files as ANSI."""

from __future__ import annotations

from pathlib import Path

import pytest

import script_checks

SCRIPTS = script_checks.upload_scripts(script_checks.REPO / "scripts" / "uploads")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_script_encoding_and_line_endings_are_right(script: Path) -> None:
    """The script passes the encoding and line-ending check."""
    assert script_checks.encoding_problems(script) == []


def test_crlf_in_a_bash_script_is_reported(tree_copy: Path) -> None:
    """A copy of the bash installer saved with CRLF line endings fails the check."""
    script = tree_copy / "scripts" / "uploads" / "linux" / "Install-LinuxPowerShell.sh"
    script.write_bytes(script.read_bytes().replace(b"\n", b"\r\n"))
    problems = script_checks.encoding_problems(script)
    assert any("CR line ending" in p for p in problems), problems


def test_invalid_utf8_in_a_powershell_script_is_reported(tree_copy: Path) -> None:
    """A copy of a .ps1 with Latin-1 bytes in it fails the check, naming the line."""
    script = tree_copy / "scripts" / "uploads" / "linux" / "Initialize-LinuxSoftware.ps1"
    script.write_bytes(b"# caf\xe9\n" + script.read_bytes())
    problems = script_checks.encoding_problems(script)
    assert any(":1: not valid UTF-8" in p for p in problems), problems


def test_non_ascii_windows_script_needs_a_bom(tree_copy: Path) -> None:
    """Non-ASCII text in a BOM-less Windows script fails; the same text with a BOM passes."""
    script = tree_copy / "scripts" / "uploads" / "windows" / "Initialize-WindowsSoftware.ps1"
    text = "# caf\u00e9\n" + script.read_text(encoding="utf-8")
    script.write_bytes(text.encode("utf-8"))
    assert any("Windows PowerShell 5.1" in p for p in script_checks.encoding_problems(script))
    script.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert script_checks.encoding_problems(script) == []
