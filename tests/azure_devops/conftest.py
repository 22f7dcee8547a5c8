"""Fixtures for the Azure DevOps checks: check-jsonschema's vendored Azure Pipelines schema with
our task (task.json's inputs) merged in, as an organisation that installed the extension sees it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TASK_JSON = ROOT / "task.json"
# Template expressions and macros stand in for any value at validation time.
EXPRESSION = {"type": "string", "pattern": r"^\s*(\$\{\{.*\}\}|\$\(.*\)|\$\[.*\])\s*$"}


def input_schema(task_input: dict) -> dict:
    """One task.json input as the schema describes inputs of Microsoft's tasks."""
    kind = task_input["type"]
    if kind == "boolean":
        value = {"type": "boolean"}
    elif kind == "pickList" and task_input.get("properties", {}).get("EditableOptions") != "True":
        value = {"enum": list(task_input["options"])}
    else:
        value = {"type": "string"}
    schema = {"description": task_input["label"], "anyOf": [value, EXPRESSION]}
    if task_input.get("aliases"):
        schema["aliases"] = task_input["aliases"]
    return schema


def merge_task(schema: dict, task: dict) -> dict:
    """Adds `<name>@<major>` with its inputs to the schema's task definitions."""
    ref = f"{task['name']}@{task['version']['Major']}"
    inputs = {i["name"]: input_schema(i) for i in task["inputs"]}
    for i in task["inputs"]:
        for alias in i.get("aliases", []):
            inputs[alias] = input_schema(i)
    required = [i["name"] for i in task["inputs"] if i.get("required") and not i.get("defaultValue")]
    definition = schema["definitions"]["task"]
    definition["properties"]["task"]["anyOf"].append(
        {"description": task["description"], "doNotSuggest": False, "ignoreCase": "value", "enum": [ref]}
    )
    definition["anyOf"].append(
        {
            "properties": {
                "task": {"description": task["friendlyName"], "ignoreCase": "value", "pattern": f"^{ref}$"},
                "inputs": {
                    "description": f"{task['friendlyName']} inputs",
                    "properties": inputs,
                    "additionalProperties": False,
                    "required": required,
                },
            },
            "doNotSuggest": False,
            "firstProperty": ["task"],
            "required": ["task", "inputs"],
        }
    )
    return schema


# What each kind of file is, in the schema's own definitions; anything else is a pipeline.
KINDS = {"jobs": "jobsTemplate", "variables": "variablesTemplate", "steps": "stepsTemplate", "stages": "stagesTemplate"}


def kind_of(path: Path) -> str:
    """`templates/x.jobs.yml` is a jobs template, `variables.yml` a variables template, …"""
    if path.name == "variables.yml":
        return "variablesTemplate"
    if path.parent.name == "templates":
        return KINDS[path.name.split(".")[-2]]
    return "pipeline"


@pytest.fixture(scope="session")
def pipelines_schema(tmp_path_factory):
    """The vendored vendor.azure-pipelines schema plus our task, one temp file per kind of file."""
    vendored = resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "azure-pipelines.json"
    schema = merge_task(json.loads(vendored.read_text(encoding="utf-8")), json.loads(TASK_JSON.read_text()))
    out = tmp_path_factory.mktemp("schema")
    files = {}
    for kind in ["pipeline", *KINDS.values()]:
        if kind != "pipeline":
            schema = {**schema, "oneOf": [{"$ref": f"#/definitions/{kind}"}]}
        files[kind] = out / f"azure-pipelines-{kind}-with-aib.json"
        files[kind].write_text(json.dumps(schema), encoding="utf-8")
    return files


@pytest.fixture(scope="session")
def check_pipeline(pipelines_schema):
    """Runs check-jsonschema on one pipeline file (as `kind`, default from its path)."""
    exe = shutil.which("check-jsonschema")
    assert exe, "check-jsonschema is not on PATH (tools/python/requirements.txt; scripts/test installs it)"

    def run(path: Path, kind: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [exe, "--schemafile", str(pipelines_schema[kind or kind_of(path)]), "--data-transform",
             "azure-pipelines", "--regex-variant", "nonunicode", "--verbose", str(path)],
            capture_output=True, text=True, check=False,
        )

    return run
