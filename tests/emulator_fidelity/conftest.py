"""Fixtures for the emulator fidelity suite: Microsoft's own Python SDKs against aib-emulator.

The emulator binary is built with cargo (or taken from AIB_EMULATOR_BIN), started with
--json --state-dir, and stopped with SIGINT at the end. Clients trust its test CA through
REQUESTS_CA_BUNDLE / SSL_CERT_FILE, exactly as the README tells users to.
"""

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def emulator_binary() -> Path:
    explicit = os.environ.get("AIB_EMULATOR_BIN")
    if explicit:
        return Path(explicit)
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "aib-emulator"],
        cwd=ROOT,
        check=True,
    )
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    return target / "debug" / "aib-emulator"


class Emulator:
    """A running aib-emulator process and what it printed about itself."""

    def __init__(self, proc: subprocess.Popen, info: dict):
        self.proc = proc
        self.info = info
        self.url = info["url"].rstrip("/")
        self.blob_url = info["blobUrl"].rstrip("/")
        self.tenant_id = info["tenantId"]
        self.subscription_id = info["subscriptionId"]
        self.client_id = info["clientId"]
        self.client_secret = info["clientSecret"]
        self.object_id = info["objectId"]
        self.ca_file = info["caFile"]

    def _admin(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.url}/_emulator/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        import ssl

        ctx = ssl.create_default_context(cafile=self.ca_file)
        with urllib.request.urlopen(req, context=ctx) as resp:
            return json.loads(resp.read())

    def knobs(self) -> dict:
        return self._admin("GET", "knobs")

    def set_knobs(self, **changes) -> dict:
        knobs = self.knobs()
        knobs.update(changes)
        return self._admin("POST", "knobs", knobs)

    def requests(self) -> list:
        return self._admin("GET", "requests")

    def clear_requests(self) -> None:
        self._admin("DELETE", "requests")


def children_of(pid: int) -> list:
    kids = []
    task_dir = Path(f"/proc/{pid}/task")
    if not task_dir.exists():
        return kids
    for task in task_dir.iterdir():
        try:
            kids += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def start_emulator(state_dir: Path, *extra: str) -> Emulator:
    binary = emulator_binary()
    proc = subprocess.Popen(
        [
            str(binary),
            "--json",
            "--state-dir",
            str(state_dir),
            "--page-size",
            "2",
            "--principal-visibility-delay",
            "3",
            "--rbac-propagation-delay",
            "2",
            "--list-lag",
            "1",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    if not line:
        err = proc.stderr.read()
        raise RuntimeError(f"aib-emulator did not start: {err}")
    return Emulator(proc, json.loads(line))


def stop_emulator(emu: Emulator) -> int:
    emu.proc.send_signal(signal.SIGINT)
    try:
        return emu.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        emu.proc.kill()
        raise


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    emu = start_emulator(tmp_path_factory.mktemp("emulator"))
    os.environ["REQUESTS_CA_BUNDLE"] = emu.ca_file
    os.environ["SSL_CERT_FILE"] = emu.ca_file
    yield emu
    stop_emulator(emu)


@pytest.fixture
def wait_until():
    def wait(check, timeout=30.0, interval=0.25):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                result = check()
                if result:
                    return result
            except Exception as e:  # noqa: BLE001 - the check decides what is transient
                last = e
            time.sleep(interval)
        raise AssertionError(f"condition not met within {timeout}s (last error: {last})")

    return wait
