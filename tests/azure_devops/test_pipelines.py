"""The bundled Azure Pipelines files against Microsoft's schema (check-jsonschema's vendored
copy) with our task merged in; misspelt keys and unknown task inputs must fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ROOT

PIPELINE_FILES = sorted((ROOT / "pipelines").rglob("*.yml"))


def test_every_pipeline_file_is_checked():
    """The bundled pipeline, its job template, its variables and the step-by-step example are all here."""
    names = {p.relative_to(ROOT).as_posix() for p in PIPELINE_FILES}
    assert {"pipelines/image.yml", "pipelines/templates/image.jobs.yml", "pipelines/variables.yml",
            "pipelines/image.steps.yml"} <= names


@pytest.mark.parametrize("path", PIPELINE_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_pipeline_file_validates_against_the_schema_with_our_task(check_pipeline, path: Path):
    """Each pipeline file is valid Azure Pipelines YAML using AzureImageBuilder@1 as declared in task.json."""
    res = check_pipeline(path)
    assert res.returncode == 0, res.stdout + res.stderr


def broken_copy(tmp_path: Path, old: str, new: str) -> Path:
    text = (ROOT / "pipelines" / "image.steps.yml").read_text()
    assert old in text
    out = tmp_path / "broken.yml"
    out.write_text(text.replace(old, new, 1))
    return out


def test_misspelt_steps_key_fails(check_pipeline, tmp_path):
    """`stepz:` instead of `steps:` is reported, so the check is not a rubber stamp."""
    res = check_pipeline(broken_copy(tmp_path, "\nsteps:\n", "\nstepz:\n"))
    assert res.returncode != 0, res.stdout
    assert "stepz" in res.stdout + res.stderr


def test_unknown_task_input_fails(check_pipeline, tmp_path):
    """An input task.json does not declare (a typo of `environment`) is reported."""
    res = check_pipeline(broken_copy(tmp_path, "      environment: dev\n", "      enviroment: dev\n"))
    assert res.returncode != 0, res.stdout


def test_unknown_command_fails(check_pipeline, tmp_path):
    """A `command` outside task.json's picklist is reported."""
    res = check_pipeline(broken_copy(tmp_path, "command: deploy-infra", "command: deploy-infrastructure"))
    assert res.returncode != 0, res.stdout


def test_unknown_task_fails(check_pipeline, tmp_path):
    """A task name nobody declared (a typo of AzureImageBuilder) is reported."""
    res = check_pipeline(broken_copy(tmp_path, "AzureImageBuilder@1", "AzureImageBuildr@1"))
    assert res.returncode != 0, res.stdout
