"""README.md's "What the image contains" table is exactly what scripts/gen-readme-software makes
of the scripts' version tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import script_checks


def test_readme_table_is_up_to_date(repo: Path) -> None:
    """The committed README matches the generator's output for the committed scripts."""
    assert script_checks.readme_problems(repo) == []


def test_readme_table_lists_every_pinned_component(repo: Path) -> None:
    """Each component of every version table has its row in the README, with its version."""
    readme = (repo / "README.md").read_text(encoding="utf-8")
    gen = script_checks.generator()
    for key, versions in gen.collect(repo / "scripts" / "uploads").items():
        rows = [line for line in readme.splitlines() if line.startswith(f"| {gen.display_name(key)} |")]
        assert len(rows) == 1, key
        for version in versions.values():
            assert f"`{version}`" in rows[0], (key, version)


def test_a_version_changed_in_a_script_makes_the_readme_stale(tree_copy: Path) -> None:
    """Changing a pinned version in a copy of a script without regenerating fails the check, and
    running the generator makes it pass again with the new version in the table."""
    script = tree_copy / "scripts" / "uploads" / "linux" / "Initialize-LinuxSoftware.ps1"
    script.write_text(script.read_text(encoding="utf-8").replace("'1.9.8'", "'1.10.0'"), encoding="utf-8")
    problems = script_checks.readme_problems(tree_copy)
    assert problems and "out of date" in problems[0] and "1.10.0" in problems[0], problems
    subprocess.run([sys.executable, str(script_checks.GENERATOR), "--root", str(tree_copy)], check=True, capture_output=True)
    assert script_checks.readme_problems(tree_copy) == []
    assert "| Terraform | `1.10.0` | `latest` |" in (tree_copy / "README.md").read_text(encoding="utf-8")


def test_a_hand_edited_table_fails(tree_copy: Path) -> None:
    """A row edited by hand between the markers fails the check."""
    readme = tree_copy / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8").replace("| Chocolatey |", "| Choco |"), encoding="utf-8")
    assert script_checks.readme_problems(tree_copy) != []


def test_missing_markers_fail(tree_copy: Path) -> None:
    """Without the marker comments the generator refuses (exit 2) and the check fails."""
    readme = tree_copy / "README.md"
    gen = script_checks.generator()
    readme.write_text(readme.read_text(encoding="utf-8").replace(gen.END, ""), encoding="utf-8")
    problems = script_checks.readme_problems(tree_copy)
    assert problems and "exited 2" in problems[0] and "markers" in problems[0], problems


def test_a_component_pinned_twice_for_one_os_fails(tree_copy: Path) -> None:
    """Pinning the same component in two scripts of one OS is refused: the table would be ambiguous."""
    script = tree_copy / "scripts" / "uploads" / "windows" / "Install-WindowsPowerShell.ps1"
    text = script.read_text(encoding="utf-8")
    script.write_text(text.replace("    'powershell' = '7.4.6'", "    'powershell' = '7.4.6'\n    'terraform' = '1.9.8'"), encoding="utf-8")
    problems = script_checks.readme_problems(tree_copy)
    assert problems and "also pinned" in problems[0], problems
