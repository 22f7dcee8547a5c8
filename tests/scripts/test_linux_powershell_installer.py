"""Install-LinuxPowerShell.sh run for real, against stand-ins for the Ubuntu tools it calls.

The bash installer is the one customization script this machine can execute. Small stand-in
programs (`id`, `curl`, `dpkg`, `dpkg-query`, `apt-get`, `apt-cache`, `pwsh`) on PATH play a fresh
Ubuntu 22.04 with Microsoft's repository offering PowerShell 7.4.5 and 7.4.6; they keep their state
(what is installed, what was called) in files, so each test sees what the script did.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

import script_checks

SCRIPT = script_checks.REPO / "scripts" / "uploads" / "linux" / "Install-LinuxPowerShell.sh"
LOG_LINE = re.compile(r"^\[aib\] component=[A-Za-z0-9:._-]+ status=(start|done|skipped|failed) version=\S+ seconds=\d+$")

STUBS = {
    "id": 'echo 0\n',
    "curl": """
echo "$*" >> "$STATE/curl.calls"
failures=$(cat "$STATE/curl.failures" 2>/dev/null || echo 0)
if [ "$failures" -gt 0 ]; then echo $((failures - 1)) > "$STATE/curl.failures"; echo "curl: (56) reset" >&2; exit 56; fi
while [ $# -gt 0 ]; do if [ "$1" = -o ]; then echo deb > "$2"; fi; shift; done
""",
    "dpkg": """
echo "$*" >> "$STATE/dpkg.calls"
case " $* " in *" -i "*) echo 1.1 > "$STATE/installed.packages-microsoft-prod" ;; esac
exit 0
""",
    "dpkg-query": """
package=${!#}
[ -f "$STATE/installed.$package" ] || { echo "dpkg-query: no packages found matching $package" >&2; exit 1; }
printf 'install ok installed|%s' "$(cat "$STATE/installed.$package")"
""",
    "apt-get": """
echo "$*" >> "$STATE/apt-get.calls"
case "$*" in
  *install*powershell=*)
    [ -f "$STATE/apt-get.fails" ] && { echo "E: Unable to fetch some archives" >&2; exit 100; }
    for arg in "$@"; do case "$arg" in powershell=*) echo "${arg#powershell=}" > "$STATE/installed.powershell";; esac; done ;;
esac
exit 0
""",
    "apt-cache": """
case "$1" in
  policy) printf 'powershell:\\n  Installed: (none)\\n  Candidate: 7.4.6-1.deb\\n' ;;
  madison) printf ' powershell | 7.4.6-1.deb | https://packages.microsoft.com/ubuntu/22.04/prod jammy/main amd64 Packages\\n'
           printf ' powershell | 7.4.5-1.deb | https://packages.microsoft.com/ubuntu/22.04/prod jammy/main amd64 Packages\\n' ;;
esac
""",
    "pwsh": """
case "$*" in
  *PSVersionTable*) cat "$STATE/installed.powershell" ;;
  *) env | grep '^AIB_' | sort > "$STATE/manifest.env" ;;
esac
""",
}


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    state: Path

    def calls(self, tool: str) -> str:
        path = self.state / f"{tool}.calls"
        return path.read_text() if path.exists() else ""

    def log_lines(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith("[aib] component=")]


@pytest.fixture
def machine(tmp_path: Path):
    """A fake Ubuntu 22.04: stand-in tools on PATH and their state folder; returns a runner."""
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    for name, body in STUBS.items():
        stub = bin_dir / name
        stub.write_text("#!/usr/bin/env bash\n" + body.lstrip("\n"))
        stub.chmod(0o755)
    os_release = tmp_path / "os-release"
    os_release.write_text('NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\n')

    def run(script: Path = SCRIPT, os_release_text: str | None = None) -> Run:
        if os_release_text is not None:
            os_release.write_text(os_release_text)
        env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "STATE": str(state),
            "AIB_OS_RELEASE": str(os_release),
            "AIB_MANIFEST": str(tmp_path / "aib" / "image-manifest.json"),
            "AIB_RETRY_DELAY_SECONDS": "0",
        }
        done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60, check=False)
        return Run(done.returncode, done.stdout, done.stderr, state)

    run.state = state
    return run


def pinned_copy(tmp_path: Path, version: str) -> Path:
    """A copy of the installer whose version table pins PowerShell to `version`."""
    copy = tmp_path / "Install-LinuxPowerShell.sh"
    copy.write_text(SCRIPT.read_text().replace('[powershell]="latest"', f'[powershell]="{version}"'))
    return copy


def test_fresh_machine_gets_the_repository_and_the_newest_powershell(machine) -> None:
    """On a fresh Ubuntu it fetches packages-microsoft-prod.deb for 22.04, installs the candidate
    version, logs start and done in the [aib] format, records the manifest and cleans apt."""
    run = machine()
    assert run.code == 0, run.stderr
    assert "https://packages.microsoft.com/config/ubuntu/22.04/packages-microsoft-prod.deb" in run.calls("curl")
    assert "-i" in run.calls("dpkg")
    assert "powershell=7.4.6-1.deb" in run.calls("apt-get")
    assert "clean" in run.calls("apt-get").splitlines()[-1]
    assert "-o DPkg::Lock::Timeout=600 install" in run.calls("apt-get"), "apt waits for a boot-time dpkg lock"
    lines = run.log_lines()
    assert all(LOG_LINE.match(line) for line in lines), lines
    assert lines[0] == "[aib] component=powershell status=start version=latest seconds=0"
    assert re.match(r"^\[aib\] component=powershell status=done version=7\.4\.6-1\.deb seconds=\d+$", lines[1]), lines
    assert [line.split(" seconds=")[0] for line in lines[2:]] == [
        "[aib] component=cleanup status=start version=apt-cache",
        "[aib] component=cleanup status=done version=apt-cache",
    ]
    manifest = (run.state / "manifest.env").read_text()
    assert "AIB_NAME=powershell" in manifest and "AIB_VERSION=7.4.6-1.deb" in manifest and "AIB_WANTED=latest" in manifest


def test_second_run_skips_powershell_already_at_the_wanted_version(machine) -> None:
    """Run twice, the second run installs nothing: the repository stays, PowerShell is skipped."""
    assert machine().code == 0
    (machine.state / "apt-get.calls").unlink()
    (machine.state / "curl.calls").unlink()
    run = machine()
    assert run.code == 0, run.stderr
    assert "install -y" not in run.calls("apt-get")
    assert run.calls("curl") == ""
    assert re.match(r"^\[aib\] component=powershell status=skipped version=7\.4\.6-1\.deb seconds=\d+$", run.log_lines()[1])


def test_a_pinned_version_installs_that_version(machine, tmp_path: Path) -> None:
    """A version in the table (7.4.5) is matched against the repository's 7.4.5-1.deb and installed."""
    run = machine(pinned_copy(tmp_path, "7.4.5"))
    assert run.code == 0, run.stderr
    assert "powershell=7.4.5-1.deb" in run.calls("apt-get")
    assert run.log_lines()[0] == "[aib] component=powershell status=start version=7.4.5 seconds=0"


def test_a_version_the_repository_lacks_stops_with_the_component_named(machine, tmp_path: Path) -> None:
    """Pinning a version the repository does not offer fails, logs failed, and names powershell."""
    run = machine(pinned_copy(tmp_path, "7.9.9"))
    assert run.code != 0
    assert 'offers no version "7.9.9" of powershell' in run.stderr
    assert "component powershell failed" in run.stderr
    assert re.match(r"^\[aib\] component=powershell status=failed version=7\.9\.9 seconds=\d+$", run.log_lines()[-1])
    assert "install -y" not in run.calls("apt-get")


def test_a_failing_install_stops_the_script(machine) -> None:
    """When apt-get install fails (after its retries) the script exits non-zero at that component."""
    (machine.state / "apt-get.fails").write_text("")
    run = machine()
    assert run.code != 0
    assert run.calls("apt-get").count("install -y") == 3, "apt-get install is retried 3 times"
    assert "component powershell failed" in run.stderr
    assert run.log_lines()[-1].startswith("[aib] component=powershell status=failed")
    assert "clean" not in run.calls("apt-get"), "nothing runs after the first failure"


def test_a_flaky_download_is_retried(machine) -> None:
    """Two failed downloads of packages-microsoft-prod.deb are retried; the third succeeds."""
    (machine.state / "curl.failures").write_text("2")
    run = machine()
    assert run.code == 0, run.stderr
    assert run.calls("curl").count("\n") == 3
    assert "attempt 1 of 5 failed" in run.stderr and "attempt 2 of 5 failed" in run.stderr


def test_a_download_that_keeps_failing_stops_the_script(machine) -> None:
    """After five failed attempts the script gives up, naming the component."""
    (machine.state / "curl.failures").write_text("99")
    run = machine()
    assert run.code != 0
    assert run.calls("curl").count("\n") == 5
    assert "failed after 5 attempts" in run.stderr and "component powershell failed" in run.stderr


def test_a_release_other_than_ubuntu_is_refused(machine) -> None:
    """On a non-Ubuntu release the script stops before touching apt."""
    run = machine(os_release_text="ID=debian\nVERSION_ID=\"12\"\n")
    assert run.code != 0
    assert "supports Ubuntu" in run.stderr and "ID=debian" in run.stderr
    assert run.calls("apt-get") == ""
