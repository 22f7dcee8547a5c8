"""The checks on the customization scripts in scripts/uploads/<os>/ (issue 13), as plain functions.

Each check takes paths and returns a list of problems (empty = clean), each naming the file and,
where there is one, the line. The tests run every check twice: on the real tree, where it must be
clean, and on a deliberately broken copy in a temp dir, where it must report the breakage. Keeping
the checks here, apart from the tests, is what lets both runs share one implementation.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "scripts" / "gen-readme-software"

# The one log line every script prints per component and status.
LOG_FORMAT_PS1 = "'[aib] component={0} status={1} version={2} seconds={3}'"
LOG_FORMAT_SH = "'[aib] component=%s status=%s version=%s seconds=%s\\n'"
STATUSES = ("start", "done", "skipped", "failed")
# Fields every image manifest entry has, and the manifest's place per OS folder.
MANIFEST_FIELDS = ("schemaVersion", "os", "updated", "components", "name", "version", "wanted", "script")
MANIFEST_PATHS = {"linux": "/etc/aib/image-manifest.json", "windows": "aib\\image-manifest.json"}
# A version table value: 'latest' or a version-like token (1.9.8, 8.0, 2.0.2.182, nuget.org).
VERSION_VALUE = re.compile(r"^(latest|[A-Za-z0-9][A-Za-z0-9.+~_-]*)$")
# Printing everything a script runs would print whatever secret a command line carries.
TRACING = re.compile(r"^\s*(set\s+-[a-wyz]*x|set\s+-o\s+xtrace|Set-PSDebug\s+.*-Trace\s+[12])", re.M)


def generator():
    """The scripts/gen-readme-software module (one parser of the version tables for all)."""
    loader = importlib.machinery.SourceFileLoader("gen_readme_software", str(GENERATOR))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def upload_scripts(uploads: Path) -> list[Path]:
    """Every script in uploads/<os>/."""
    return sorted(p for p in uploads.glob("*/*") if p.suffix in (".ps1", ".sh") and p.is_file())


def tool(name: str) -> str:
    """A test tool from the pinned venv (next to this Python) or PATH; fails loudly when absent."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=path)
    if not found:
        raise RuntimeError(f"{name} not found: install tools/python/requirements.txt (scripts/test does)")
    return found


# --- shellcheck ------------------------------------------------------------------------------------


def shellcheck_problems(scripts: list[Path]) -> list[str]:
    """shellcheck's findings (every severity) on the given bash scripts."""
    if not scripts:
        return []
    run = subprocess.run(
        [tool("shellcheck"), "--format=gcc", *map(str, scripts)],
        capture_output=True,
        text=True,
        check=False,
    )
    problems = [line for line in run.stdout.splitlines() if line.strip()]
    if run.returncode != 0 and not problems:
        problems.append(f"shellcheck exited {run.returncode}: {run.stderr.strip()}")
    return problems


# --- PowerShell parse (tree-sitter-powershell) ----------------------------------------------------


def powershell_parse_problems(script: Path) -> list[str]:
    """Syntax errors in a .ps1: every ERROR or MISSING node of the tree-sitter parse, with its line.

    tree-sitter-powershell 0.26.4 also rejects two things PowerShell accepts: an empty script block
    (`{}`) and a bare-word list as a command argument (`-Name a, b`). Write `$null`-checks instead of
    empty blocks and `@('a', 'b')` for lists; the scripts are clearer that way anyway."""
    import tree_sitter
    import tree_sitter_powershell

    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    tree = parser.parse(script.read_bytes())
    problems: list[str] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            row, column = node.start_point
            what = f"missing {node.type!r}" if node.is_missing else "syntax error"
            text = node.text.decode("utf-8", "replace").splitlines()[0][:60] if node.text else ""
            problems.append(f"{script}:{row + 1}:{column + 1}: {what} near {text!r}")
        stack.extend(reversed(node.children))
    return sorted(set(problems), key=lambda p: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", p)])


def embedded_powershell(script: Path) -> list[tuple[int, str]]:
    """The PowerShell programs a bash script passes to `pwsh ... -Command '...'`, with the line
    each starts on, so they get the same parse check as the .ps1 files."""
    text = script.read_text(encoding="utf-8")
    return [
        (text[: match.start(1)].count("\n") + 1, match.group(1))
        for match in re.finditer(r"pwsh\b[^'\n]*-Command '([^']*)'", text)
    ]


def embedded_powershell_problems(script: Path, scratch: Path) -> list[str]:
    """Parse problems of the PowerShell embedded in a bash script, with the bash file's lines."""
    problems: list[str] = []
    for index, (first_line, program) in enumerate(embedded_powershell(script)):
        snippet = scratch / f"{script.stem}.embedded-{index}.ps1"
        snippet.write_text(program, encoding="utf-8")
        for problem in powershell_parse_problems(snippet):
            found = re.match(r".*?\.ps1:(\d+):(\d+): (.*)$", problem)
            line = first_line + int(found.group(1)) - 1 if found else first_line
            problems.append(f"{script}:{line}: in the embedded PowerShell: {found.group(3) if found else problem}")
    return problems


# --- Windows PowerShell 5.1 -------------------------------------------------------------------------

# Image Builder runs Windows scripts with Windows PowerShell 5.1, which lacks these PowerShell 7 features.
PS7_ONLY = {
    r"\?\?=?": "the ?? / ??= operators",
    r"\?\.": "the ?. operator",
    r"(?<![|&])&&(?!&)|\|\|": "the && / || pipeline chain operators",
    r"(?i)\butf8NoBOM\b": "-Encoding utf8NoBOM",
    r"(?i)ForEach-Object\s+-Parallel\b": "ForEach-Object -Parallel",
    r"(?i)-AsHashtable\b": "ConvertFrom-Json -AsHashtable",
    r"(?i)\$Is(Windows|Linux|MacOS)\b": "the $IsWindows / $IsLinux variables",
    r"(?i)#Requires\s+-Version\s+[6-9]": "#Requires -Version 6 or later",
}


def windows_powershell_problems(script: Path) -> list[str]:
    """PowerShell 7-only syntax in a script that Windows PowerShell 5.1 runs."""
    problems: list[str] = []
    text = re.sub(r"<#.*?#>", lambda m: "\n" * m.group(0).count("\n"), script.read_text(encoding="utf-8"), flags=re.S)
    for number, line in enumerate(text.splitlines(), 1):
        code = re.sub(r"'[^']*'|\"[^\"]*\"", "''", line)  # string contents are not syntax
        code = code.split("#", 1)[0] if not code.lstrip().startswith("#Requires") else code
        for pattern, what in PS7_ONLY.items():
            if re.search(pattern, code):
                problems.append(f"{script}:{number}: {what} needs PowerShell 7; Windows PowerShell 5.1 runs this script")
    return problems


# --- encodings and line endings ---------------------------------------------------------------------


def encoding_problems(script: Path) -> list[str]:
    """.sh: UTF-8 with LF only. .ps1: valid UTF-8; under windows/ also ASCII-only or with a BOM,
    because Windows PowerShell 5.1 reads a BOM-less script as the ANSI code page."""
    data = script.read_bytes()
    problems: list[str] = []
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        problems.append(f"{script}:{line}: not valid UTF-8 ({error.reason})")
    if script.suffix == ".sh" and b"\r" in data:
        line = data[: data.index(b"\r")].count(b"\n") + 1
        problems.append(f"{script}:{line}: CR line ending; .sh files use LF only")
    if script.suffix == ".ps1" and script.parent.name == "windows":
        has_bom = data.startswith(b"\xef\xbb\xbf")
        if not has_bom and any(b > 0x7F for b in data):
            offset = next(i for i, b in enumerate(data) if b > 0x7F)
            line = data[:offset].count(b"\n") + 1
            problems.append(
                f"{script}:{line}: non-ASCII text in a BOM-less script; Windows PowerShell 5.1 "
                "would misread it (use ASCII or save with a UTF-8 BOM)"
            )
    return problems


# --- conventions -------------------------------------------------------------------------------------


def _first_line(lines: list[str], pattern: str) -> int | None:
    """1-based number of the first line matching pattern, or None."""
    for number, line in enumerate(lines, 1):
        if re.search(pattern, line):
            return number
    return None


def _code_only(text: str) -> str:
    """The script without its comments (whole-line # comments and PowerShell <# ... #> blocks), so
    a convention met only in the documentation does not count."""
    text = re.sub(r"<#.*?#>", "", text, flags=re.S)
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def convention_problems(script: Path) -> list[str]:
    """The conventions every customization script follows (issue 13): strict error handling, one
    version table at the top with sane values, the [aib] log line with every status, a retry
    helper, the image manifest's path and fields, and no command tracing."""
    text = script.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    code = _code_only(text)
    problems: list[str] = []
    gen = generator()

    try:
        entries = gen.read_version_table(script)
    except gen.TableError as error:
        problems.append(f"version table: {error}")
        entries = []
    keys = [key for key, _value, _line in entries]
    for key, value, line in entries:
        if keys.count(key) > 1:
            problems.append(f"{script}:{line}: '{key}' appears {keys.count(key)} times in the version table")
        if not VERSION_VALUE.match(value):
            problems.append(f"{script}:{line}: '{key}' = {value!r} is neither 'latest' nor a version")

    if script.suffix == ".ps1":
        first_function = _first_line(lines, r"^\s*function\s")
        table_at = _first_line(lines, gen.PS_TABLE_START.pattern)
        required = {
            "$ErrorActionPreference = 'Stop'": r"^\$ErrorActionPreference\s*=\s*'Stop'\s*$",
            "Set-StrictMode -Version Latest": r"^Set-StrictMode\s+-Version\s+Latest\s*$",
            "a retry function (function Invoke-WithRetry)": r"^function\s+Invoke-WithRetry\b",
        }
        log_format = LOG_FORMAT_PS1
        manifest_writer = r"ConvertTo-Json"
    else:
        first_function = _first_line(lines, r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*\(\)\s*\{")
        table_at = _first_line(lines, gen.SH_TABLE_START.pattern)
        required = {
            "set -euo pipefail": r"^set\s+-euo\s+pipefail\s*$",
            "a retry function (retry() { ... })": r"^retry\(\)\s*\{",
        }
        log_format = LOG_FORMAT_SH
        manifest_writer = r"write_manifest"

    for what, pattern in required.items():
        if _first_line(lines, pattern) is None:
            problems.append(f"{script}: missing {what}")
    strict = _first_line(lines, r"^\$ErrorActionPreference\s*=\s*'Stop'|^set\s+-euo\s+pipefail")
    if strict and table_at and first_function and not (strict < first_function and table_at < first_function):
        problems.append(
            f"{script}:{first_function}: error handling and the version table belong at the top, "
            "before the first function"
        )
    if log_format not in code:
        problems.append(f"{script}: missing the log line format {log_format}")
    for status in STATUSES:
        if not re.search(rf"\b{status}\b", code):
            problems.append(f"{script}: never logs status={status}")
    os_folder = script.parent.name
    manifest_path = MANIFEST_PATHS.get(os_folder)
    if manifest_path is None:
        problems.append(f"{script}: unknown OS folder '{os_folder}' (expected one of {sorted(MANIFEST_PATHS)})")
    elif manifest_path not in code:
        problems.append(f"{script}: does not write the image manifest {manifest_path}")
    if not re.search(manifest_writer, code):
        problems.append(f"{script}: never writes the image manifest ({manifest_writer})")
    for field in MANIFEST_FIELDS:
        if not re.search(rf"\b{field}\b", code):
            problems.append(f"{script}: the image manifest lacks the field '{field}'")
    for match in TRACING.finditer(text):
        line = text[: match.start()].count("\n") + 1
        problems.append(f"{script}:{line}: command tracing would print secrets: {match.group(0).strip()!r}")
    return problems


# --- parameter files <-> scripts ----------------------------------------------------------------------


def strip_jsonc(text: str) -> str:
    """JSON with // and /* */ comments and trailing commas -> plain JSON; line numbers are kept."""
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
        elif c == '"':
            in_string = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("\n" * text.count("\n", i, end))
            i = end
        else:
            out.append(c)
            i += 1
    plain = "".join(out)
    # Trailing commas: a comma followed only by whitespace before } or ] (strings are intact here,
    # and a comma inside a string is never followed by a closing bracket outside it).
    return _without_trailing_commas(plain)


def _without_trailing_commas(text: str) -> str:
    out: list[str] = []
    in_string = False
    i = 0
    while i < len(text):
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_string = False
        elif c == '"':
            in_string = True
            out.append(c)
        elif c == ",":
            j = i + 1
            while j < len(text) and text[j] in " \t\r\n":
                j += 1
            if j < len(text) and text[j] in "}]":
                i += 1
                continue
            out.append(c)
        else:
            out.append(c)
        i += 1
    return "".join(out)


def load_jsonc(path: Path) -> Any:
    return json.loads(strip_jsonc(path.read_text(encoding="utf-8-sig")))


REFERENCE_KEYS = ("script", "file", "scriptUri", "sourceUri")


def customization_references(document: Any) -> list[str]:
    """The script names/URLs a parameter document's customization steps point at: the values of
    `script`, `file`, `scriptUri` and `sourceUri` anywhere under a `customizationSteps` list."""
    found: list[str] = []

    def steps(node: Any, inside: bool) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if inside and key in REFERENCE_KEYS and isinstance(value, str):
                    found.append(value)
                steps(value, inside or key == "customizationSteps")
        elif isinstance(node, list):
            for item in node:
                steps(item, inside)

    steps(document, False)
    return found


def reference_problems(root: Path) -> list[str]:
    """Every script a bundled parameter file names exists in scripts/uploads/<os>/, and every
    script there is named by some bundled parameter file (no dead scripts)."""
    uploads = root / "scripts" / "uploads"
    files = sorted((root / "parameters").glob("*.json"))
    if not files:
        return [f"no bundled parameter files (parameters/*.json) under {root}"]
    scripts = {p.name: p for p in upload_scripts(uploads)}
    referenced: set[str] = set()
    problems: list[str] = []
    for path in files:
        try:
            document = load_jsonc(path)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            problems.append(f"{path}: not JSON with comments: {error}")
            continue
        for value in customization_references(document):
            if value.startswith("["):
                continue  # an ARM template expression, resolved by Azure
            is_url = "://" in value
            name = value.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            referenced.add(name)
            if not is_url and name not in scripts:
                problems.append(
                    f"{path}: names the script '{value}', which is not in {uploads.relative_to(root)}/<os>/"
                )
    for name, path in sorted(scripts.items()):
        if name not in referenced:
            problems.append(f"{path}: no bundled parameter file references it (dead script)")
    return problems


# --- README table ----------------------------------------------------------------------------------------


def readme_problems(root: Path) -> list[str]:
    """README.md's generated table differs from what scripts/gen-readme-software makes of root."""
    run = subprocess.run(
        [sys.executable, str(GENERATOR), "--check", "--root", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode == 0:
        return []
    return [f"gen-readme-software --check exited {run.returncode}: {run.stderr.strip()}\n{run.stdout}"]
