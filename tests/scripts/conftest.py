"""Fixtures for the customization-script checks: the repository paths and a temp copy of the parts
the checks read (scripts/uploads, parameters, README.md), which a test may break on purpose."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import script_checks


@pytest.fixture
def repo() -> Path:
    return script_checks.REPO


@pytest.fixture
def uploads(repo: Path) -> Path:
    return repo / "scripts" / "uploads"


@pytest.fixture
def tree_copy(tmp_path: Path, repo: Path) -> Path:
    """A temp copy of scripts/uploads, parameters/ (when it exists) and README.md."""
    root = tmp_path / "repo"
    shutil.copytree(repo / "scripts" / "uploads", root / "scripts" / "uploads")
    if (repo / "parameters").is_dir():
        shutil.copytree(repo / "parameters", root / "parameters")
    shutil.copy2(repo / "README.md", root / "README.md")
    return root
