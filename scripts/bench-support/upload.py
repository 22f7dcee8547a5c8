#!/usr/bin/env python3
"""Driver of `scripts/bench upload`: every contender against one Azurite, side by side.

It makes the workloads (1,000 files of 1-20 KiB and one 256 MiB file, both from a fixed
seed), starts Azurite on loopback with its well-known account key, and runs each contender
against a fresh container: our `upload-scripts` (release build, connection string), the Azure
CLI's `az storage blob upload-batch`, a Node `@azure/storage-blob` loop uploading file by file,
and (256 MiB only) a raw `curl` PUT of the same bytes. Wall time is taken around each
contender's process, peak RSS is the kernel's accounting of it (wait4, read through GNU time).
The timed runs go to an Azurite without `--debug`: its debug log costs the server (one Node
process that every contender shares) a formatted line per request and per step, which slowed
everyone and hid the differences between clients. Request counts come from one more,
untimed run of each contender against a second Azurite with `--debug`, whose log names every
request's method and URL. The median of --runs runs is reported, and the results table is
written as Markdown into this benchmark's section of docs/benchmarks.md.

Only the standard library: the contenders are what is being measured, not the driver.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from results import INTERLEAVED, load_average, publish

ACCOUNT = "devstoreaccount1"
# Azurite's documented development key: public, the same on every machine.
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
SMALL_FILES = 1000
SMALL_MIN, SMALL_MAX = 1024, 20 * 1024
BIG_SIZE = 256 * 1024 * 1024
# The reference client for the small files: curl, 8 uploads in flight (see Bench.command).
FLOOR = "curl ×8 (floor)"
EXTENSIONS = [".sh", ".ps1", ".json", ".txt"]
TIME = "/usr/bin/time"  # GNU time (Debian package `time`)


@dataclass
class Measure:
    """One run of one contender: wall seconds, peak RSS in KiB, requests Azurite saw."""

    seconds: float
    max_rss_kib: int
    requests: int
    listings: int
    detail: str = ""
    server_cpu: float = 0.0  # CPU seconds Azurite spent during the run (all its threads)


@dataclass
class Result:
    """All runs of one contender on one workload."""

    contender: str
    workload: str
    runs: list[Measure] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return statistics.median(m.seconds for m in self.runs)

    @property
    def server_cpu(self) -> float:
        return statistics.median(m.server_cpu for m in self.runs)

    @property
    def max_rss_mib(self) -> float:
        return max(m.max_rss_kib for m in self.runs) / 1024

    @property
    def requests(self) -> int:
        return int(statistics.median(m.requests for m in self.runs))

    @property
    def listings(self) -> int:
        return max(m.listings for m in self.runs)


def make_workloads(work: Path) -> tuple[Path, Path]:
    """Writes the two folders with deterministic pseudo-random content (seeded)."""
    small = work / "small"
    rng = random.Random(20261128)
    for i in range(SMALL_FILES):
        path = small / f"dir{i % 10:02d}" / f"file{i:04d}{EXTENSIONS[i % len(EXTENSIONS)]}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(SMALL_MIN, SMALL_MAX)))
    big = work / "big"
    big.mkdir(parents=True, exist_ok=True)
    rng = random.Random(256)
    chunk = 8 * 1024 * 1024
    with open(big / "image-payload.bin", "wb") as f:
        for _ in range(BIG_SIZE // chunk):
            f.write(rng.randbytes(chunk))
    return small, big


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Azurite:
    """One Azurite blob service on loopback, in memory; with `debug`, a log of every request."""

    def __init__(self, exe: str, work: Path, debug: bool):
        self.port = free_port()
        name = "azurite-debug" if debug else "azurite"
        self.log = work / f"{name}.log"
        self.out = open(work / f"{name}.out", "wb")
        self.proc = subprocess.Popen(
            [
                exe,
                "--blobHost", "127.0.0.1",
                "--blobPort", str(self.port),
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--inMemoryPersistence",
                *(["--debug", str(self.log)] if debug else []),
            ],
            stdout=self.out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"bench: azurite exited at start (see {work / 'azurite.out'})")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        sys.exit("bench: azurite did not listen within 30 s")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.endpoint};"
        )

    def cpu_seconds(self) -> float:
        """CPU time (user + system, every thread) the Azurite process has used so far."""
        fields = (Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split())
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def requests_since(self, offset: int, container: str) -> tuple[int, int, float | None, float | None]:
        """(requests, listings, time of the first listing, time of the last request) for
        `container` logged after byte `offset`; times as Unix seconds from Azurite's log.

        Azurite writes its log asynchronously: wait until the log stops growing first."""
        last = -1
        for _ in range(50):
            size = self.log_size()
            if size == last:
                break
            last = size
            time.sleep(0.2)
        pattern = re.compile(
            rf"RequestMethod=(\w+) RequestURL=\S*/{ACCOUNT}/{re.escape(container)}(?P<rest>[/?]\S*)?\s"
        )
        requests = listings = 0
        first_listing = last = None
        with open(self.log, "rb") as f:
            f.seek(offset)
            for raw in f:
                line = raw.decode("utf-8", "replace")
                m = pattern.search(line)
                if not m:
                    continue
                requests += 1
                when = log_time(line)
                last = when if when is not None else last
                if "comp=list" in (m.group("rest") or ""):
                    listings += 1
                    if first_listing is None:
                        first_listing = when
        return requests, listings, first_listing, last

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.out.close()


def log_time(line: str) -> float | None:
    """The Unix time of an Azurite log line (it starts with an ISO 8601 UTC timestamp)."""
    try:
        return dt.datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()
    except ValueError:
        return None


def run_measured(cmd: list[str], env: dict[str, str], logs: Path, name: str) -> tuple[float, int, str]:
    """Runs cmd to the end; returns (wall seconds, peak RSS KiB, stdout). Fails loudly."""
    out = logs / f"{name}.stdout"
    err = logs / f"{name}.stderr"
    rss = logs / f"{name}.rss"
    # GNU time reports the child's ru_maxrss (KiB) from wait4. It is there rather than a wait4
    # of our own because Linux carries the high-water mark across fork+exec: a child of this
    # (larger) Python process would start with the driver's RSS as its floor.
    timed = [TIME, "--format", "%M", "--output", str(rss), *cmd]
    with open(out, "wb") as o, open(err, "wb") as e:
        start = time.perf_counter()
        code = subprocess.run(timed, env=env, stdout=o, stderr=e, stdin=subprocess.DEVNULL).returncode
        seconds = time.perf_counter() - start
    if code != 0:
        sys.exit(
            f"bench: {name} exited {code}: {' '.join(cmd[:3])} …\n"
            f"{err.read_text(errors='replace')[-2000:]}"
        )
    return seconds, int(rss.read_text().split()[-1]), out.read_text(errors="replace")


def parameter_file(folder: Path, container: str) -> str:
    """A minimal valid parameter file whose scripts folder and container are the workload's."""
    return json.dumps(
        {
            "contentVersion": "1.0.0.0",
            "parameters": {
                "location": {"value": "westeurope"},
                "resourceGroupName": {"value": "rg-aib-bench"},
                "identityName": {"value": "id-aib-bench"},
                "storageAccountName": {"value": ACCOUNT},
                "containerName": {"value": container},
                "galleryName": {"value": "gal_aib_bench"},
                "scriptsFolder": {"value": folder.name},
                "imageDefinition": {
                    "value": {
                        "name": "bench", "osType": "Linux", "osState": "Generalized",
                        "hyperVGeneration": "V2", "publisher": "aib", "offer": "bench",
                        "sku": "bench",
                    }
                },
                "imageTemplate": {
                    "value": {
                        "namePrefix": "it-bench",
                        "imageSource": {
                            "type": "PlatformImage", "publisher": "Canonical",
                            "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2",
                            "version": "latest",
                        },
                        "customizationSteps": [
                            {"type": "Shell", "name": "hello", "inline": ["echo hi"]}
                        ],
                        "vmSize": "Standard_D2ds_v5",
                        "replicationRegions": ["westeurope"],
                    }
                },
            },
        },
        indent=2,
    )


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path, azurite: Azurite, counter: Azurite):
        self.args = args
        self.work = work
        self.timed = counter if args.timed_with_debug else azurite
        self.counter = counter
        self.azurite = self.timed
        self.logs = work / "logs"
        self.logs.mkdir()
        self.params = work / "parameters"
        self.params.mkdir()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(work / "home"),
            "AZURE_STORAGE_CONNECTION_STRING": self.azurite.connection_string,
            # The Azure CLI: no telemetry, no survey, its own config dir.
            "AZURE_CONFIG_DIR": str(work / "azure-config"),
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_SURVEY_MESSAGE": "false",
            "AZURE_CORE_ONLY_SHOW_ERRORS": "true",
            "CI": "true",
        }
        self.results: dict[tuple[str, str], Result] = {}
        # (contender, workload) -> (requests, listings, note) from the counting run.
        self.counts: dict[tuple[str, str], tuple[int, int, str]] = {}

    def use(self, azurite: Azurite) -> None:
        """Points every contender (and the driver's own Node helper) at `azurite`."""
        self.azurite = azurite
        self.env["AZURE_STORAGE_CONNECTION_STRING"] = azurite.connection_string

    def node(self, *args: str) -> str:
        return subprocess.run(
            ["node", str(self.args.node_dir / "blob.js"), *args],
            env=self.env, check=True, capture_output=True, text=True,
        ).stdout.strip()

    def command(self, contender: str, folder: Path, container: str) -> list[str]:
        if contender == "upload-scripts":
            pfile = self.params / f"{container}.json"
            pfile.write_text(parameter_file(folder, container))
            return [
                str(self.args.upload_scripts), "--parameters", str(pfile),
                "--root", str(folder.parent), "--output", "json",
                *self.args.ours_arg,
            ]
        if contender == "az upload-batch":
            return [
                str(self.args.az), "storage", "blob", "upload-batch",
                "--destination", container, "--source", str(folder),
                "--overwrite", "true", "--no-progress", "--output", "none",
            ]
        if contender == "node loop":
            return ["node", str(self.args.node_dir / "blob.js"), "upload", container, str(folder)]
        if contender == FLOOR:
            # The cheapest client there is: every file one bare Put Blob (no content type, no
            # MD5, no listing) with a container SAS signed beforehand, 8 in flight like ours.
            # Its time is what the server alone costs for these requests.
            query = self.node("container-sas", container)
            config = self.params / f"{container}.curl"
            with open(config, "w") as f:
                for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                    blob = path.relative_to(folder).as_posix()
                    f.write(f'upload-file = "{path}"\nurl = "{self.azurite.endpoint}/{container}/'
                            f'{blob}?{query}"\noutput = "/dev/null"\n')
            return [
                "curl", "-sS", "-f", "--parallel", "--parallel-max", "8",
                "-H", "x-ms-blob-type: BlockBlob", "-H", "Expect:", "--config", str(config),
            ]
        if contender == "curl PUT":
            files = [p for p in folder.rglob("*") if p.is_file()]
            assert len(files) == 1, "curl only sends the single-file workload"
            url = self.node("sas", container, files[0].name)
            # -T streams the file; "Expect:" skips the 100-continue round trip.
            return [
                "curl", "-sS", "-f", "-o", "/dev/null", "-X", "PUT", "-T", str(files[0]),
                "-H", "x-ms-blob-type: BlockBlob", "-H", "Expect:", url,
            ]
        raise ValueError(contender)

    def measure(self, contender: str, workload: str, folder: Path, container: str,
                fresh: bool, counting: bool = False) -> Measure:
        """One run of one contender. A timed run goes into the results; a counting run (against
        the debug Azurite) only records the requests Azurite logged and, for ours, where the
        time went by the log's timestamps."""
        if fresh:
            self.node("create", container)
        cmd = self.command(contender, folder, container)
        offset = self.azurite.log_size()
        name = f"{container}-{workload}".replace(" ", "_")
        started = time.time()
        cpu_before = self.azurite.cpu_seconds()
        seconds, rss, stdout = run_measured(cmd, self.env, self.logs, name)
        server_cpu = self.azurite.cpu_seconds() - cpu_before
        requests = listings = 0
        detail = ""
        if contender == "upload-scripts":
            outcome = json.loads(stdout)["outcome"]
            detail = f"{outcome['uploaded']} uploaded, {outcome['skipped']} unchanged"
        if counting:
            requests, listings, listed_at, last_at = self.azurite.requests_since(offset, container)
            # Where the time goes: before the listing the step only scans and hashes locally.
            if contender == "upload-scripts" and listed_at is not None and last_at is not None:
                detail = (
                    f"start to listing {listed_at - started:.2f} s, listing to last request "
                    f"{last_at - listed_at:.2f} s"
                )
            self.counts[(contender, workload)] = (requests, listings, detail)
            print(f"  {workload:<16} {contender:<16} {requests:5d} requests {detail} "
                  f"(counting run, {seconds:.2f} s)", flush=True)
            return Measure(seconds, rss, requests, listings, detail)
        m = Measure(seconds, rss, requests, listings, detail, server_cpu)
        self.results.setdefault((contender, workload), Result(contender, workload)).runs.append(m)
        print(f"  {workload:<16} {contender:<16} {seconds:7.2f} s {rss / 1024:7.1f} MiB "
              f"Azurite CPU {server_cpu:5.2f} s {detail}", flush=True)
        return m

    def run(self, small: Path, big: Path) -> None:
        slug = {"upload-scripts": "ours", "az upload-batch": "az", "node loop": "node",
                "curl PUT": "curl", FLOOR: "floor"}
        only = set(self.args.only or [])
        multi = [c for c in ["upload-scripts", "az upload-batch", "node loop"]
                 if not only or c in only]
        single = [c for c in [*multi, "curl PUT"] if not only or c in only]

        def one_round(tag: str, counting: bool) -> None:
            # Interleaved, so background load hits every contender alike.
            for c in multi:
                self.measure(c, "1,000 files", small, f"{slug[c]}-small-{tag}", True, counting)
            for c in multi:
                self.measure(c, "no-change re-run", small, f"{slug[c]}-small-{tag}", False,
                             counting)
            for c in multi:
                self.node("delete", f"{slug[c]}-small-{tag}")
            if not only or FLOOR in only:
                self.measure(FLOOR, "1,000 files", small, f"floor-small-{tag}", True, counting)
                self.node("delete", f"floor-small-{tag}")
            for c in single:
                self.measure(c, "256 MiB file", big, f"{slug[c]}-big-{tag}", True, counting)
                self.node("delete", f"{slug[c]}-big-{tag}")

        for r in range(self.args.runs):
            print(f"run {r + 1} of {self.args.runs} (timed)", flush=True)
            one_round(str(r), counting=False)
        print("counting run (Azurite with --debug, not timed)", flush=True)
        self.use(self.counter)
        one_round("count", counting=True)


def az_version(az: Path) -> str:
    try:
        out = subprocess.run([str(az), "version", "-o", "json"], capture_output=True, text=True, timeout=120)
        return json.loads(out.stdout)["azure-cli"]
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
        return "unknown"


def versions(args: argparse.Namespace) -> list[str]:
    def first_line(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    pkg = json.loads((args.node_dir / "node_modules/@azure/storage-blob/package.json").read_text())
    azurite: dict = {}
    for parent in Path(args.azurite).resolve().parents:
        candidate = parent / "package.json"
        if candidate.exists() and json.loads(candidate.read_text()).get("name") == "azurite":
            azurite = json.loads(candidate.read_text())
            break
    return [
        f"- `upload-scripts`: {first_line([str(args.upload_scripts), '--version'])}, release build, "
        + (f"with `{' '.join(args.ours_arg)}`" if args.ours_arg else "default flags (`--concurrency 8`)"),
        f"- Azure CLI: {az_version(args.az)} (PyPI `azure-cli`, in a throwaway virtualenv)",
        f"- Node loop: `@azure/storage-blob` {pkg['version']} on Node {first_line(['node', '--version'])}, "
        "`uploadFile` per file, one after the other",
        f"- curl: {first_line(['curl', '--version'])}",
        f"- Azurite: {azurite.get('version', 'unknown')} (`--inMemoryPersistence --skipApiVersionCheck "
        "--disableTelemetry`; the counting run's also `--debug`), plain HTTP on loopback, account "
        "key auth",
    ]


def table(results: dict[tuple[str, str], Result],
          counts: dict[tuple[str, str], tuple[int, int, str]]) -> list[str]:
    rows = [
        "| Workload | Contender | Wall time (median) | Each run | Peak RSS | Azurite CPU | Requests | Note |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    order = ["1,000 files", "no-change re-run", "256 MiB file"]
    for (contender, workload), r in sorted(results.items(), key=lambda kv: order.index(kv[0][1])):
        note = min(r.runs, key=lambda m: abs(m.seconds - r.seconds)).detail  # the median run's
        requests, listings, split = counts.get((contender, workload), (0, 0, ""))
        if split:
            note = f"{note} (counting run: {split})"
        if contender == "upload-scripts" and workload == "no-change re-run":
            note = f"{note}; {listings} listing(s)".strip("; ")
        each = ", ".join(f"{m.seconds:.2f}" for m in r.runs)
        rows.append(
            f"| {workload} | {contender} | {r.seconds:.2f} s | {each} | {r.max_rss_mib:.1f} MiB | "
            f"{r.server_cpu:.2f} s | {requests} | {note} |"
        )
    return rows


def verdicts(results: dict[tuple[str, str], Result],
             counts: dict[tuple[str, str], tuple[int, int, str]]) -> list[str]:
    def t(c: str, w: str) -> float:
        return results[(c, w)].seconds

    ours_small = t("upload-scripts", "1,000 files")
    vs_az = t("az upload-batch", "1,000 files") / ours_small
    vs_node = t("node loop", "1,000 files") / ours_small
    big = t("curl PUT", "256 MiB file") / t("upload-scripts", "256 MiB file")
    rerun = results[("upload-scripts", "no-change re-run")]
    rerun_requests, rerun_listings, _ = counts[("upload-scripts", "no-change re-run")]
    ok = lambda b: "**met**" if b else "**missed**"  # noqa: E731
    az_row = f"| 1,000 files ≥ 5× faster than `az` | {vs_az:.2f}× | {ok(vs_az >= 5)} |"
    floor_rows = []
    if (FLOOR, "1,000 files") in results:
        floor = t(FLOOR, "1,000 files")
        floor_vs_az = t("az upload-batch", "1,000 files") / floor
        if vs_az < 5 and floor_vs_az < 5:
            az_row = (
                f"| 1,000 files ≥ 5× faster than `az` | {vs_az:.2f}×; the floor client is "
                f"{floor_vs_az:.2f}× | {ok(False)}: out of reach of any client on this Azurite "
                f"(5× `az` is {t('az upload-batch', '1,000 files') / 5:.2f} s, the floor "
                f"{floor:.2f} s) |"
            )
        floor_rows.append(
            f"| (not a target) 1,000 files: ours against the floor | {ours_small / floor:.2f}× the "
            f"floor's time | — |"
        )
    return [
        "| Target | Measured | Verdict |",
        "| --- | --- | --- |",
        az_row,
        f"| 1,000 files ≥ 2× faster than the Node loop | {vs_node:.2f}× | {ok(vs_node >= 2)} |",
        f"| 256 MiB at ≥ 80 % of a raw `curl` PUT | {big * 100:.1f} % of curl's speed | {ok(big >= 0.8)} |",
        f"| No-change re-run ≤ one listing | {rerun_listings} listing(s), {rerun_requests} request(s) in all "
        f"(counting run), {rerun.runs[-1].detail} | {ok(rerun_requests <= 1)} |",
        *floor_rows,
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--upload-scripts", type=Path, required=True)
    p.add_argument("--az", type=Path, required=True)
    p.add_argument("--node-dir", type=Path, required=True)
    p.add_argument("--azurite", required=True)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs) for inspection")
    p.add_argument("--only", action="append", metavar="CONTENDER",
                   help="run only this contender (repeatable; a trial, nothing is written)")
    p.add_argument("--ours-arg", action="append", default=[], metavar="ARG",
                   help="an extra argument for upload-scripts, e.g. --ours-arg=--concurrency=16")
    p.add_argument("--timed-with-debug", action="store_true",
                   help="time against the --debug Azurite too (the old setup), for comparison")
    p.add_argument("--dry", action="store_true", help="print the results, do not write --out")
    args = p.parse_args()
    if args.only:
        args.dry = True

    work = Path(tempfile.mkdtemp(prefix="aib-bench-upload-"))
    load_before = load_average()
    started = dt.datetime.now(dt.timezone.utc)
    print(f"bench: workloads in {work}", flush=True)
    small, big = make_workloads(work)
    azurite = Azurite(args.azurite, work, debug=False)
    counter = Azurite(args.azurite, work, debug=True)
    try:
        bench = Bench(args, work, azurite, counter)
        bench.run(small, big)
    finally:
        azurite.stop()
        counter.stop()
    if args.dry:
        print("\n".join(table(bench.results, bench.counts)))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        return

    lines = [
        "## upload-scripts (`scripts/bench upload`)",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC, {args.runs} run(s) per contender and workload, median wall",
        "time, largest peak RSS (the kernel's `ru_maxrss` of the contender's process, via GNU `time`).",
        "Every contender talks to the same Azurite directly with the account key (ours through",
        "`AZURE_STORAGE_CONNECTION_STRING`, the environment form of `--connection-string`), each",
        "into a fresh container, so no proxy is measured. The timed runs go to an Azurite without",
        "`--debug`; requests are counted in one more, untimed run of every contender against a",
        "second Azurite with `--debug`, from its log of the contender's container. (Until",
        "2026-11-28 the timed runs went to the `--debug` Azurite: its per-request logging slowed",
        "the server all contenders share, most of all for the fastest client.)",
        "",
        "Workloads: 1,000 files of 1–20 KiB of seeded random bytes in 10 folders (≈10 MiB); one",
        "256 MiB file of seeded random bytes; the re-run of the 1,000 files with nothing changed.",
        "`az` runs with `--overwrite true` (it has no change detection, so its re-run uploads",
        "everything again; the same goes for the Node loop). curl streams the file (`-T`) in one",
        "Put Blob with a SAS, which Azurite accepts at 256 MiB (no block upload was needed).",
        f"`{FLOOR}` is the yardstick for the 1,000 files: curl with 8 uploads in flight (like",
        "ours), each file one bare Put Blob with a container SAS signed beforehand (no content",
        "type, no MD5, no listing, no hashing), so its time is about what Azurite alone needs for",
        "1,000 Put Blobs. Azurite CPU is the server process's user + system time during the run",
        "(all its threads, from `/proc`), the median over the runs.",
        "For `upload-scripts` the note splits its time in the counting run with Azurite's log",
        "timestamps: until its one listing it only scans and hashes the small files locally (MD5",
        "and SHA-256), after it come the uploads. Up to 4 MiB a file is sent from memory in one",
        "Put Blob with its MD5; a larger one whose blob is missing or of another size is not",
        "hashed first: up to 256 MiB it streams from disk in one Put Blob, its SHA-256 computed as",
        "the bytes go, then one Set Blob Properties sets the MD5 the service returned for what it",
        "stored (2 requests); above, as parallel blocks with a second reader hashing alongside.",
        "The split is approximate (±0.1 s): Azurite stamps a log",
        "line when its busy event loop gets to it. Each contender's output is kept with",
        "`scripts/bench upload --keep`.",
        "",
        *table(bench.results, bench.counts),
        "",
        "### Targets (issue 7)",
        "",
        *verdicts(bench.results, bench.counts),
        "",
        "Ratios are of median wall times (contender ÷ ours; for curl, curl ÷ ours as a share of",
        "curl's throughput). Azurite, one Node process sharing the 2 cores with the contender, is",
        "the ceiling for small files: its CPU time for 1,000 Put Blobs (column Azurite CPU) is about",
        "the wall time of the fastest clients, whoever sends them. Profiled (`node --cpu-prof`), it",
        "goes to Express routing, matching the URL against every operation's template, and",
        "LokiJS's scan for an existing blob of the name, per request. Ours spends ~0.4 s of CPU on",
        "1,000 files and waits on Azurite for the rest; `--concurrency` 4, 8, 16 and 32 measured",
        "alike within the noise (medians 2.38, 2.33, 2.37, 2.56 s in one trial), so the default",
        "stays 8. For the 256 MiB file,",
        "Azurite's intake of the body is CPU-bound here: CPU the client spends while sending slows",
        "it (an MD5 computed while streaming made the Put ~0.8 s slower in an A/B trial), so our",
        "body carries only a SHA-256 and the MD5 is the one the service returns.",
        "",
        "### Contenders",
        "",
        *versions(args),
    ]
    publish(args.out, "upload", lines, load_before, INTERLEAVED)
    print(f"bench: wrote {args.out}")
    if args.keep:
        print(f"bench: kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
