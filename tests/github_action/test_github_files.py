"""The GitHub files are valid, offline: action.yml against the GitHub Actions schema and every
workflow against the workflows schema (check-jsonschema's built-in copies), every workflow
through actionlint with shellcheck on its `run:` blocks — and a broken copy fails those checks,
so they are known to catch a typo rather than pass anything."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml")) + sorted((REPO / "workflows").glob("*.yml"))


def tool(name: str) -> str:
    """The checker on PATH (scripts/test puts .tools/venv/bin there); missing is a failure."""
    path = shutil.which(name)
    assert path, f"{name} is not on PATH: run scripts/test, which installs tools/python/requirements.txt"
    return path


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with one of its built-in (vendored, offline) schemas."""
    return subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", schema, *map(str, files)],
        capture_output=True, text=True, check=False,
    )


def actionlint(root: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    """actionlint from `root` (it needs the .git there to follow local reusable workflows),
    running shellcheck on run: blocks."""
    return subprocess.run(
        [tool("actionlint"), "-shellcheck", tool("shellcheck"), "-no-color", *map(str, files)],
        capture_output=True, text=True, check=False, cwd=root,
    )


def broken_copy(tmp_path: Path, old: str, new: str) -> Path:
    """A git repository in tmp_path holding the workflows, with `old` replaced by `new` once in
    the reusable pipeline."""
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    for wf in (REPO / ".github" / "workflows").glob("*.yml"):
        shutil.copy(wf, tmp_path / ".github" / "workflows" / wf.name)
    target = tmp_path / ".github" / "workflows" / "image-pipeline.yml"
    text = target.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in the pipeline any more: update this test"
    target.write_text(text.replace(old, new, 1), encoding="utf-8")
    return target


def test_there_are_workflows_to_check() -> None:
    """The dispatch, reusable, release and CI workflows and the users' copy are all found."""
    names = {str(p.relative_to(REPO)) for p in WORKFLOWS}
    assert {
        ".github/workflows/ci.yml", ".github/workflows/image.yml",
        ".github/workflows/image-pipeline.yml", ".github/workflows/release.yml", "workflows/image.yml",
    } <= names


def test_action_yml_matches_the_github_actions_schema() -> None:
    """action.yml validates against vendor.github-actions."""
    res = check_jsonschema("vendor.github-actions", REPO / "action.yml")
    assert res.returncode == 0, res.stdout + res.stderr


def test_workflows_match_the_github_workflows_schema() -> None:
    """Every workflow validates against vendor.github-workflows (one run: the checker starts slowly)."""
    res = check_jsonschema("vendor.github-workflows", *WORKFLOWS)
    assert res.returncode == 0, res.stdout + res.stderr


def test_actionlint_reports_nothing_on_the_workflows() -> None:
    """actionlint (expressions, job needs, matrix, action inputs, shellcheck on run:) is silent."""
    res = actionlint(REPO, *WORKFLOWS)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout == ""


def test_a_misspelt_key_in_a_workflow_fails_both_checks(tmp_path: Path) -> None:
    """`timout-minutes` instead of `timeout-minutes` is refused by the schema and by actionlint."""
    broken = broken_copy(tmp_path, "timeout-minutes: 330", "timout-minutes: 330")

    schema = check_jsonschema("vendor.github-workflows", broken)
    lint = actionlint(tmp_path, broken)

    assert schema.returncode != 0, schema.stdout
    assert "timout-minutes" in schema.stdout + schema.stderr
    assert lint.returncode != 0, lint.stdout
    assert 'unexpected key "timout-minutes"' in lint.stdout


def test_a_misspelt_job_in_needs_fails_actionlint(tmp_path: Path) -> None:
    """A `needs:` naming a job that does not exist (a typo the schema cannot see) fails actionlint."""
    broken = broken_copy(tmp_path, "needs: [plan, sbx]", "needs: [plan, sxb]")

    lint = actionlint(tmp_path, broken)

    assert lint.returncode != 0
    assert 'job "dev" needs job "sxb" which does not exist' in lint.stdout


def test_an_unquoted_variable_in_a_run_block_fails_shellcheck(tmp_path: Path) -> None:
    """actionlint really runs shellcheck: an unquoted expansion in run: is reported (SC2086)."""
    broken = broken_copy(tmp_path, '>> "$GITHUB_OUTPUT"', ">> $GITHUB_OUTPUT")

    lint = actionlint(tmp_path, broken)

    assert lint.returncode != 0
    assert "SC2086" in lint.stdout


def test_a_wrong_runtime_in_action_yml_fails_the_schema(tmp_path: Path) -> None:
    """action.yml with `using: node42` is refused by vendor.github-actions."""
    broken = tmp_path / "action.yml"
    text = (REPO / "action.yml").read_text(encoding="utf-8")
    assert "using: node24" in text
    broken.write_text(text.replace("using: node24", "using: node42"), encoding="utf-8")

    res = check_jsonschema("vendor.github-actions", broken)

    assert res.returncode != 0
    assert "node42" in res.stdout + res.stderr


def test_the_users_dispatch_workflow_is_this_repositorys_but_for_the_pipeline_reference() -> None:
    """workflows/image.yml (copied by users) and .github/workflows/image.yml differ only in the
    header comment and where the reusable pipeline comes from."""

    def body(path: Path) -> list[str]:
        lines = path.read_text(encoding="utf-8").splitlines()
        return [line for line in lines if not line.startswith("#")]

    users = body(REPO / "workflows" / "image.yml")
    ours = body(REPO / ".github" / "workflows" / "image.yml")
    assert "    uses: aib-dev/aib/.github/workflows/image-pipeline.yml@v1" in users
    assert "    uses: ./.github/workflows/image-pipeline.yml" in ours
    assert [line for line in users if "image-pipeline.yml" not in line] == [
        line for line in ours if "image-pipeline.yml" not in line
    ]
