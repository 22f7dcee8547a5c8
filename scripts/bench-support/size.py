#!/usr/bin/env python3
"""Driver of `scripts/bench size`: what `scripts/package` built, measured.

For each target under the package folder: the multi-call `aib` (every step inside, the steps
as hard links to it), its tar.gz, and the .vsix with the three Linux-built platforms. The
table goes into this benchmark's section of docs/benchmarks.md with the issue 14 targets
(≤ 6 MiB a step binary, a .vsix ≤ 50 MiB with Linux x64, Linux arm64 and Windows x64).
Only the standard library.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import load_average, publish  # noqa: E402  (shared by every benchmark)

STEPS = ["remove-templates", "deploy-infra", "upload-scripts", "trigger-build", "wait-for-build"]
MIB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dist", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seconds", type=int, required=True, help="how long scripts/package took")
    args = parser.parse_args()

    rows = ["| Target | `aib` (every step) | step executables | archive (tar.gz) |",
            "| --- | ---: | --- | ---: |"]
    largest = 0
    for folder in sorted(p for p in args.dist.iterdir() if p.is_dir()):
        exe = ".exe" if "windows" in folder.name else ""
        aib = folder / f"aib{exe}"
        if not aib.is_file():
            continue
        size = aib.stat().st_size
        largest = max(largest, size)
        linked = all((folder / f"{s}{exe}").stat().st_ino == aib.stat().st_ino for s in STEPS)
        archive = args.dist / f"aib-{folder.name}.tar.gz"
        rows.append(
            f"| `{folder.name}` | {size / MIB:.2f} MiB ({size:,} B) | "
            f"{'5 hard links to it (0 B each)' if linked else '**not links**'} | "
            f"{archive.stat().st_size / MIB:.2f} MiB |"
        )
    vsix = max(args.dist.glob("aib-*.vsix"), key=lambda p: p.stat().st_mtime, default=None)
    if vsix is None:
        sys.exit("bench size: no .vsix in the package folder")
    vsix_size = vsix.stat().st_size
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = load_average()
    body = publish(args.out, "size", [
        "## Shipped sizes (`scripts/bench size`)",
        "",
        f"Run {now}: `scripts/package` (the `dist` profile: opt-level \"s\", fat LTO, one codegen",
        "unit, panic = \"abort\", stripped) for the three Linux-built targets and the .vsix ran",
        f"{args.seconds} s (cargo rebuilds only what changed since its last build). Every platform",
        "ships one multi-call `aib`; each step is a hard link to it (docs/distribution.md), so a",
        "platform's whole set is the one file.",
        "",
        *rows,
        "",
        f"The .vsix (`{vsix.name}`, one `aib` for each of the three platforms, task.json, the",
        f"shim, icon and overview): {vsix_size / MIB:.2f} MiB.",
        "",
        "### Targets (issue 14)",
        "",
        "| Target | Measured | Verdict |",
        "| --- | --- | --- |",
        f"| ≤ 6 MiB a step binary | the largest `aib`, which is every step binary of its platform: "
        f"{largest / MIB:.2f} MiB | {'**met**' if largest <= 6 * MIB else '**missed**'} |",
        f"| .vsix ≤ 50 MiB with Linux x64, Linux arm64, Windows x64 | {vsix_size / MIB:.2f} MiB | "
        f"{'**met**' if vsix_size <= 50 * MIB else '**missed**'} |",
    ], load)
    print(body)


if __name__ == "__main__":
    main()
