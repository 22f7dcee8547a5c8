#!/usr/bin/env python3
"""Driver of `scripts/bench startup`: how long each step binary takes to start, next to `az`.

It starts `aib-emulator` (with Azurite) on loopback, prepares one environment with the real
pipeline (`aib run --env local --scope All --wait`, so the infrastructure, the scripts and a
finished template exist), then times, each process from spawn to exit:

- `aib --version` and every step's `--version` (each step by its own name: the hard links
  `scripts/package` makes to the one multi-call binary), and `az --version`;
- a read-only run of every step binary against the emulator (`--what-if` for the four that
  plan; wait-for-build re-attaching to the finished template, its read-only run), and
  `az group show` against the same emulator (`az cloud register` pointing at it, a service
  principal login done once beforehand, `REQUESTS_CA_BUNDLE` at its CA);
- for each read-only run of ours, the time from spawn to its first request (the token request)
  as the emulator logged its arrival (`/_emulator/requests`, cleared before each run).

The binaries are what ships: `scripts/package --platforms linux-x64 --no-vsix` (the `dist`
profile, static musl).

Runs are interleaved (every contender once per round) so machine load falls on all alike; the
median per contender is reported with the ratio to az, in this benchmark's section of
docs/benchmarks.md. Only the standard library.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import ssl
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import INTERLEAVED, load_average, publish  # noqa: E402  (shared by every benchmark)

STEPS = ["deploy-infra", "upload-scripts", "trigger-build", "wait-for-build", "remove-templates"]
CLOUD = "AibEmulator"


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    """Wall seconds of one process, spawn to exit; a failure stops the benchmark."""
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"bench startup: {' '.join(cmd)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
    return took


class Emulator:
    """aib-emulator with Azurite, started for the benchmark and stopped at the end."""

    def __init__(self, binary: Path, work: Path, path_env: str):
        self.work = work
        info = work / "emulator.json"
        self.log = open(work / "emulator.log", "w")
        self.proc = subprocess.Popen(
            [str(binary), "--json", "--state-dir", str(work / "emulator"), "--time-scale", "600"],
            stdout=open(info, "w"),
            stderr=self.log,
            env={**os.environ, "PATH": path_env},
        )
        for _ in range(600):
            if info.exists() and info.read_text().strip():
                break
            if self.proc.poll() is not None:
                sys.exit(f"bench startup: the emulator exited:\n{(work / 'emulator.log').read_text()}")
            time.sleep(0.1)
        self.info = json.loads(info.read_text().splitlines()[0])

    def stop(self) -> None:
        self.proc.send_signal(2)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def emulator_admin(emu: dict, method: str, path: str):
    """The emulator's admin API (`/_emulator/...`), JSON in and out."""
    ctx = ssl.create_default_context(cafile=emu["caFile"])
    req = urllib.request.Request(f"{emu['url'].rstrip('/')}/_emulator/{path}", method=method)
    with urllib.request.urlopen(req, context=ctx) as resp:
        return json.loads(resp.read() or b"null")


def first_request_after(emu: dict, spawned: float) -> float:
    """Seconds from `spawned` (epoch) to the first request the emulator logged since it was
    cleared."""
    # The log holds the admin DELETE that cleared it (stamped before the spawn): skip admin calls.
    log = [r for r in emulator_admin(emu, "GET", "requests") if not r["path"].startswith("/_emulator")]
    if not log:
        sys.exit("bench startup: the run made no request the emulator saw")
    first = min(r["at"]["secs_since_epoch"] + r["at"]["nanos_since_epoch"] / 1e9 for r in log)
    return first - spawned


def arm_request(emu: dict, method: str, path: str, body: dict | None = None) -> None:
    """One ARM call with curl and a fresh token (benchmark setup, not measured)."""
    ca, url = emu["caFile"], emu["url"].rstrip("/")
    token = json.loads(
        subprocess.run(
            ["curl", "-sS", "--fail", "--cacert", ca,
             "--data-urlencode", "grant_type=client_credentials",
             "--data-urlencode", f"client_id={emu['clientId']}",
             "--data-urlencode", f"client_secret={emu['clientSecret']}",
             "--data-urlencode", "scope=https://management.azure.com/.default",
             f"{url}/{emu['tenantId']}/oauth2/v2.0/token"],
            capture_output=True, text=True, check=True,
        ).stdout
    )["access_token"]
    cmd = ["curl", "-sS", "--fail", "--cacert", ca, "-o", "/dev/null", "-X", method,
           "-H", f"Authorization: Bearer {token}", "-H", "Content-Type: application/json",
           f"{url}{path}"]
    if body is not None:
        cmd += ["-d", json.dumps(body)]
    subprocess.run(cmd, check=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin-dir", type=Path, required=True, help="the release step binaries")
    p.add_argument("--aib", type=Path, required=True, help="aib (prepares the environment)")
    p.add_argument("--emulator", type=Path, required=True)
    p.add_argument("--az", type=Path, required=True)
    p.add_argument("--azurite-bin", type=Path, required=True, help="folder with azurite")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--root", type=Path, required=True)
    args = p.parse_args()

    load_before = load_average()
    work = Path(tempfile.mkdtemp(prefix="aib-bench-startup-"))
    path_env = f"{args.azurite_bin}:{os.environ.get('PATH', '')}"
    emulator = Emulator(args.emulator, work, path_env)
    try:
        emu = emulator.info
        sub = emu["subscriptionId"]
        ours = {
            "PATH": path_env,
            "HOME": str(work),
            "NO_COLOR": "1",
            "SSL_CERT_FILE": emu["caFile"],
            "AIB_ARM_ENDPOINT": emu["url"],
            "AIB_AUTHORITY_HOST": emu["url"],
            "AZURE_SUBSCRIPTION_ID": sub,
            "AZURE_CLIENT_ID": emu["clientId"],
            "AZURE_TENANT_ID": emu["tenantId"],
            "AZURE_CLIENT_SECRET": emu["clientSecret"],
        }
        # Uploads need a data role (Owner has none), granted once as an admin would.
        arm_request(
            emu, "PUT",
            f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments/"
            f"{__import__('uuid').uuid4()}?api-version=2022-04-01",
            {"properties": {
                "roleDefinitionId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/"
                                    "roleDefinitions/ba92f5b4-2d11-453d-a403-e96b0029c9fe",
                "principalId": emu["objectId"], "principalType": "ServicePrincipal"}},
        )
        print("==> preparing the environment: aib run --env local --scope All --wait", flush=True)
        prep = subprocess.run(
            [str(args.aib), "run", "--env", "local", "--scope", "All", "--wait",
             "--poll-interval", "0.5", "--output", "json"],
            env=ours, cwd=args.root, capture_output=True, text=True,
        )
        if prep.returncode != 0:
            sys.exit(f"bench startup: preparing failed:\n{prep.stderr}")
        template = json.loads(prep.stdout)["outcome"]["environments"][0]["templateName"]

        # The Azure CLI, pointed at the emulator in a config dir of its own.
        az_env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(work),
            "AZURE_CONFIG_DIR": str(work / "az"),
            "REQUESTS_CA_BUNDLE": emu["caFile"],
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_NO_COLOR": "true",
            "AZURE_CORE_ONLY_SHOW_ERRORS": "true",
            # MSAL would ask login.microsoftonline.com about an authority it does not know.
            "AZURE_CORE_INSTANCE_DISCOVERY": "false",
        }
        url = emu["url"].rstrip("/")
        for cmd in (
            ["cloud", "register", "-n", CLOUD, "--skip-endpoint-discovery",
             "--endpoint-resource-manager", f"{url}/",
             "--endpoint-active-directory", url,
             "--endpoint-active-directory-resource-id", "https://management.core.windows.net/",
             "--endpoint-active-directory-graph-resource-id", "https://graph.windows.net/",
             "--suffix-storage-endpoint", "core.windows.net"],
            ["cloud", "set", "-n", CLOUD],
        ):
            out = subprocess.run([str(args.az), *cmd], env=az_env, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"bench startup: az {' '.join(cmd[:2])} failed ({out.returncode}):\n{out.stderr}")
        # `az login` signs in, stores the secret and lists the subscriptions (api-version
        # 2022-12-01 of the subscriptions API, which aib-emulator serves).
        login = subprocess.run(
            [str(args.az), "login", "--service-principal", "-u", emu["clientId"], "-p",
             emu["clientSecret"], "--tenant", emu["tenantId"], "-o", "none"],
            env=az_env, capture_output=True, text=True,
        )
        if login.returncode != 0:
            sys.exit(f"bench startup: az login failed ({login.returncode}):\n{login.stderr}")

        bin_dir = args.bin_dir
        version = {s: [str(bin_dir / s), "--version"] for s in ["aib", *STEPS]}
        version["az --version"] = [str(args.az), "--version"]
        read_only = {
            "deploy-infra": [str(bin_dir / "deploy-infra"), "--env", "local", "--what-if"],
            "upload-scripts": [str(bin_dir / "upload-scripts"), "--env", "local", "--what-if"],
            "trigger-build": [str(bin_dir / "trigger-build"), "--env", "local", "--what-if"],
            "wait-for-build": [str(bin_dir / "wait-for-build"), "--env", "local",
                               "--template", template],
            "remove-templates": [str(bin_dir / "remove-templates"), "--env", "local", "--what-if"],
            "az group show": [str(args.az), "group", "show", "-n", "rg-aib-local", "-o", "none"],
        }
        times: dict[tuple[str, str], list[float]] = {}
        # One warm-up round (page cache, the emulator's first answers), not counted.
        for rnd in range(args.rounds + 1):
            print(f"==> round {rnd}/{args.rounds}{' (warm-up)' if rnd == 0 else ''}", flush=True)
            for kind, commands in (("--version", version), ("read-only run", read_only)):
                for name, cmd in commands.items():
                    env = az_env if name.startswith("az") else ours
                    measure_first = kind == "read-only run" and not name.startswith("az")
                    if measure_first:
                        emulator_admin(emu, "DELETE", "requests")
                    spawned = time.time()
                    took = timed(cmd, env, args.root)
                    if rnd > 0:
                        times.setdefault((kind, name), []).append(took)
                        if measure_first:
                            times.setdefault(("first request", name), []).append(
                                first_request_after(emu, spawned))
        az_cli = json.loads(subprocess.run([str(args.az), "version", "-o", "json"], env=az_env,
                                           capture_output=True, text=True).stdout)["azure-cli"]
    finally:
        emulator.stop()

    med = {k: statistics.median(v) for k, v in times.items()}
    az_v, az_g = med[("--version", "az --version")], med[("read-only run", "az group show")]
    rows = [
        "| Measure | Contender | Median | Min | Max | az ÷ ours |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for (kind, name), values in times.items():
        ref = az_v if kind == "--version" else az_g
        ratio = "" if name.startswith("az") or kind == "first request" else f"{ref / med[(kind, name)]:.0f}×"
        what = {
            "--version": f"`{name}`" if name.startswith("az") else f"`{name} --version`",
            "read-only run": {
                "az group show": "`az group show -n rg-aib-local`",
                "wait-for-build": "`wait-for-build --template <finished>`",
            }.get(name, f"`{name} --what-if`"),
            "first request": f"`{name}`: spawn → token request arrives",
        }[kind]
        rows.append(
            f"| {kind} | {what} | {med[(kind, name)] * 1000:.1f} ms | {min(values) * 1000:.1f} ms | "
            f"{max(values) * 1000:.1f} ms | {ratio} |"
        )
    ours_versions = [med[("--version", s)] for s in ["aib", *STEPS]]
    slowest = max(ours_versions)
    verdict = "**met**" if az_v / slowest >= 50 else "**missed**"
    firsts = [med[("first request", s)] for s in STEPS]
    slowest_first = max(firsts)
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = publish(args.out, "startup", [
        "## Cold start (`scripts/bench startup`)",
        "",
        f"Run {now}, {args.rounds} interleaved rounds after one warm-up round: each round runs",
        "every contender once, spawn to exit, and the median per contender is reported. Ours are",
        "the shipped Linux x64 build (`scripts/package --platforms linux-x64`: the `dist` profile,",
        "static musl; one multi-call `aib`, each step run by its own name, a hard link to it);",
        f"`az` is azure-cli {az_cli} from PyPI in a throwaway virtualenv.",
        "The read-only runs go to one `aib-emulator` (with Azurite) on loopback over HTTPS,",
        "prepared once with `aib run --env local --scope All --wait`: `--what-if` for the four",
        "steps that plan (each reads what it needs: deploy-infra 16 resources and the caller's",
        "permissions, upload-scripts the account and a container listing, trigger-build the",
        "account, remove-templates the template list), wait-for-build re-attaching to the",
        "finished template. Each of our runs gets its own token (client secret) first; `az` was",
        "logged in once beforehand (`az cloud register --skip-endpoint-discovery` at the",
        "emulator, `AZURE_CORE_INSTANCE_DISCOVERY=false`, `REQUESTS_CA_BUNDLE` at its CA,",
        "`az login --service-principal`) and answers from its token cache.",
        "",
        *rows,
        "",
        "### Targets (issues 10 and 14)",
        "",
        "| Target | Measured | Verdict |",
        "| --- | --- | --- |",
        f"| each step binary answers `--version` in < 20 ms (median) | slowest "
        f"{slowest * 1000:.1f} ms | {'**met**' if slowest < 0.020 else '**missed**'} |",
        f"| each step makes its first request in < 50 ms (median) | slowest "
        f"{slowest_first * 1000:.1f} ms ({max(STEPS, key=lambda s: med[('first request', s)])}) | "
        f"{'**met**' if slowest_first < 0.050 else '**missed**'} |",
        f"| ≥ 50× faster than `az` to start | `az --version` {az_v * 1000:.0f} ms ÷ slowest step "
        f"`--version` {slowest * 1000:.1f} ms = {az_v / slowest:.0f}× | {verdict} |",
        f"| (no target) a read-only call | `az group show` {az_g * 1000:.0f} ms vs our what-if runs "
        f"{min(med[('read-only run', s)] for s in STEPS) * 1000:.0f}–"
        f"{max(med[('read-only run', s)] for s in STEPS) * 1000:.0f} ms | |",
    ], load_before, INTERLEAVED)
    print(body)


if __name__ == "__main__":
    main()
