"""What every `scripts/bench` driver writes the same way: its section of docs/benchmarks.md
and the description of the machine it ran on.

Each driver renders its own tables; this module gives them one load-average reading, one
machine description and one way to replace a section, so the sections cannot drift apart.
Only the standard library.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

HEADER = """# Benchmarks

Written by `scripts/bench` (run it again rather than editing a section by hand; each
benchmark rewrites only its own section). Performance is measured here, not in timed tests.
"""

# For the drivers that run every contender once per round.
INTERLEAVED = ("the contenders are interleaved run by run, so any other load falls on all of "
               "them alike")


def sh(cmd: str) -> str:
    return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.rstrip()


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as `/proc/loadavg` has them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine(load_before: str, load_after: str, note: str = "") -> list[str]:
    """The machine's Markdown description; `note` says how the driver met other load."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor() or "unknown",
    )
    load = f"- Load average (1/5/15 min) before: {load_before}; after: {load_after}"
    return [
        f"- CPU: {cpu}; `nproc` = {os.cpu_count() and sh('nproc')}",
        "- Memory (`free -h`):",
        "",
        "  ```",
        *("  " + line for line in sh("free -h").splitlines()),
        "  ```",
        f"- OS: {sh('. /etc/os-release && echo $PRETTY_NAME')}, kernel {platform.release()}",
        f"{load} ({note})." if note else f"{load}.",
    ]


def write_section(out: Path, name: str, body: str) -> None:
    """Replaces this benchmark's section of the results file, keeping the others."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}\n"
    text = out.read_text() if out.exists() else HEADER
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        text = before + block + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    out.write_text(text)


def publish(out: Path, name: str, lines: list[str], load_before: str, note: str = "") -> str:
    """Ends `lines` with the machine section (load read now, as the run's "after"), writes the
    section `name` of `out` and returns its Markdown."""
    body = "\n".join([*lines, "", "### Machine", "", *machine(load_before, load_average(), note), ""])
    write_section(out, name, body)
    return body
