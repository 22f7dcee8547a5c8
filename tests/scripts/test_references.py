"""Parameter files and scripts agree: every script a bundled parameter file names exists in
scripts/uploads/<os>/, and every script there is named by some bundled parameter file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import script_checks

GOOD_LINUX = """// Linux image for the sandbox (a bundled parameter file, JSON with comments).
{
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
  "contentVersion": "1.0.0.0",
  "parameters": {
    "imageTemplate": {
      "value": {
        /* steps run in order */
        "customizationSteps": [
          { "type": "Shell", "name": "pwsh", "script": "Install-LinuxPowerShell.sh" },
          { "type": "File", "file": "Initialize-LinuxSoftware.ps1", "destination": "/tmp/Initialize-LinuxSoftware.ps1", },
          { "type": "Shell", "inline": ["sudo pwsh -File /tmp/Initialize-LinuxSoftware.ps1"] },
        ],
      },
    },
  },
}
"""
GOOD_WINDOWS = """{
  "parameters": {
    "imageTemplate": { "value": { "customizationSteps": [
      { "type": "PowerShell", "script": "Install-WindowsPowerShell.ps1" }, // PowerShell 7 first
      { "type": "WindowsRestart" },
      { "type": "PowerShell", "script": "Initialize-WindowsSoftware.ps1", "runElevated": true }
    ] } }
  }
}
"""


def write_parameters(root: Path, **files: str) -> None:
    folder = root / "parameters"
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.json"):
        old.unlink()
    for name, text in files.items():
        (folder / f"{name}.json").write_text(text, encoding="utf-8")


def test_bundled_parameter_files_and_scripts_agree(repo: Path) -> None:
    """The real tree: parameters/*.json reference exactly the scripts in scripts/uploads/."""
    assert script_checks.reference_problems(repo) == []


def test_jsonc_reader_drops_comments_and_trailing_commas_but_not_urls() -> None:
    """Comments and trailing commas go; '//' and '/*' inside strings stay; lines keep their numbers."""
    text = '{\n  // a comment\n  "url": "https://x/y/*z*/", /* block\n comment */ "list": [1, 2,],\n}\n'
    plain = script_checks.strip_jsonc(text)
    assert json.loads(plain) == {"url": "https://x/y/*z*/", "list": [1, 2]}
    assert plain.count("\n") == text.count("\n")


def test_references_are_found_only_under_customization_steps() -> None:
    """script/file/scriptUri/sourceUri values count inside customizationSteps, nowhere else."""
    document = {
        "file": "outside.ps1",
        "parameters": {"imageTemplate": {"value": {"customizationSteps": [
            {"script": "a.sh"}, {"file": "b.ps1"}, {"scriptUri": "https://x/c.ps1"}, {"sourceUri": "https://x/d.sh?sv=1"},
        ]}}},
    }
    assert script_checks.customization_references(document) == ["a.sh", "b.ps1", "https://x/c.ps1", "https://x/d.sh?sv=1"]


def test_complete_parameter_files_pass(tree_copy: Path) -> None:
    """Parameter files (with comments) that name all four scripts pass the check."""
    write_parameters(tree_copy, **{"sbx.image.parameters.linux": GOOD_LINUX, "sbx.image.parameters.windows": GOOD_WINDOWS})
    assert script_checks.reference_problems(tree_copy) == []


def test_an_unreferenced_script_fails(tree_copy: Path) -> None:
    """A script no parameter file names is reported as dead."""
    write_parameters(tree_copy, **{"sbx.image.parameters.linux": GOOD_LINUX, "sbx.image.parameters.windows": GOOD_WINDOWS})
    (tree_copy / "scripts" / "uploads" / "linux" / "Forgotten.sh").write_text("#!/usr/bin/env bash\n")
    problems = script_checks.reference_problems(tree_copy)
    assert len(problems) == 1 and "Forgotten.sh" in problems[0] and "dead script" in problems[0], problems


def test_a_script_dropped_from_the_parameter_files_fails(tree_copy: Path) -> None:
    """Removing the Windows parameter file leaves both Windows scripts unreferenced."""
    write_parameters(tree_copy, **{"sbx.image.parameters.linux": GOOD_LINUX})
    problems = script_checks.reference_problems(tree_copy)
    assert sorted(Path(p.split(":")[0]).name for p in problems) == [
        "Initialize-WindowsSoftware.ps1",
        "Install-WindowsPowerShell.ps1",
    ], problems


def test_a_referenced_script_that_does_not_exist_fails(tree_copy: Path) -> None:
    """A parameter file naming a script missing from scripts/uploads/ is reported."""
    broken = GOOD_WINDOWS.replace('"WindowsRestart" }', '"WindowsRestart" },\n{ "type": "PowerShell", "script": "Missing.ps1" }')
    write_parameters(tree_copy, **{"sbx.image.parameters.linux": GOOD_LINUX, "sbx.image.parameters.windows": broken})
    problems = script_checks.reference_problems(tree_copy)
    assert any("Missing.ps1" in p and "not in" in p for p in problems), problems


def test_a_full_url_counts_as_a_reference_without_needing_a_local_file(tree_copy: Path) -> None:
    """A step pointing at a URL references the script of that name; an external URL is allowed."""
    linux = GOOD_LINUX.replace('"script": "Install-LinuxPowerShell.sh"',
                               '"scriptUri": "https://sa.blob.core.windows.net/scripts/Install-LinuxPowerShell.sh"')
    linux = linux.replace('"inline"', '"scriptUri": "https://example.com/external.sh", "x"')
    write_parameters(tree_copy, **{"sbx.image.parameters.linux": linux, "sbx.image.parameters.windows": GOOD_WINDOWS})
    assert script_checks.reference_problems(tree_copy) == []


@pytest.mark.parametrize("missing", ["folder", "empty"])
def test_no_parameter_files_fails(tree_copy: Path, missing: str) -> None:
    """Without any bundled parameter file nothing references the scripts: the check fails."""
    if missing == "empty":
        write_parameters(tree_copy)
    elif (tree_copy / "parameters").exists():
        import shutil

        shutil.rmtree(tree_copy / "parameters")
    assert script_checks.reference_problems(tree_copy) != []


def test_a_parameter_file_that_is_not_json_fails(tree_copy: Path) -> None:
    """A parameter file that even the tolerant reader cannot parse is reported."""
    write_parameters(tree_copy, **{"sbx.image.parameters.linux": GOOD_LINUX, "sbx.image.parameters.windows": GOOD_WINDOWS[:-5]})
    assert any("not JSON with comments" in p for p in script_checks.reference_problems(tree_copy))
