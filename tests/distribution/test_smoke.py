"""Smoke tests of the shipped binaries on every platform this machine can run: the static
Linux x64 binary in an empty root (no libc, no loader), the Linux arm64 binary under
qemu-aarch64, and the Windows binary under Wine, where `upload-scripts --what-if` against the
emulator must see the same files, names and checksums as on Linux.

The binaries come from AIB_DIST_DIR (see conftest.py), in scripts/package's layout: each
target's `aib` plus the five steps as hard links to it, so a step called by its own name is
tested too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import struct
import subprocess
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from conftest import LINUX_ARM64, LINUX_X64, ROOT, STEPS, WINDOWS_X64, tool

VERSION = next(
    line.split('"')[1]
    for line in (ROOT / "Cargo.toml").read_text().splitlines()
    if line.startswith("version = ")
)
BUNDLED = sorted(p.name for p in (ROOT / "parameters").glob("*.json"))


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("timeout", 300)
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)


def elf_facts(path: Path) -> dict:
    """Machine, and whether the file asks for a loader (PT_INTERP) or shared libraries
    (DT_NEEDED), read from the ELF headers themselves."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, f"{path} is not a 64-bit LE ELF"
    machine = struct.unpack_from("<H", data, 18)[0]
    phoff = struct.unpack_from("<Q", data, 32)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    interp = needed = False
    for i in range(phnum):
        off = phoff + i * phentsize
        p_type = struct.unpack_from("<I", data, off)[0]
        p_offset, _, _, p_filesz = struct.unpack_from("<QQQQ", data, off + 8)
        if p_type == 3:  # PT_INTERP
            interp = True
        if p_type == 2:  # PT_DYNAMIC: look for DT_NEEDED (1) entries
            for j in range(0, p_filesz, 16):
                tag = struct.unpack_from("<q", data, p_offset + j)[0]
                if tag == 0:
                    break
                needed |= tag == 1
    return {"machine": {62: "x86_64", 183: "aarch64"}.get(machine, machine), "interp": interp, "needed": needed}


def pe_machine(path: Path) -> int:
    data = path.read_bytes()[:4096]
    assert data[:2] == b"MZ", f"{path} is not a PE file"
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    assert data[pe:pe + 4] == b"PE\0\0"
    return struct.unpack_from("<H", data, pe + 4)[0]


def check_validate_output(res: subprocess.CompletedProcess) -> None:
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    for name in BUNDLED:
        assert f"{name}: valid" in out.replace("\\", "/"), f"{name} not validated in:\n{out}"


def empty_root(tmp_path: Path, target_dir: Path) -> Path:
    """A root holding only the binaries (aib and its step links) and the parameter files with
    the scripts they name: no /lib, no libc, no loader."""
    root = tmp_path / "root"
    root.mkdir()
    for entry in target_dir.iterdir():
        os.link(entry, root / entry.name)
    shutil.copytree(ROOT / "parameters", root / "parameters")
    shutil.copytree(ROOT / "scripts" / "uploads", root / "scripts" / "uploads")
    shutil.copytree(ROOT / "schema", root / "schema")
    assert not any((root / d).exists() for d in ("lib", "lib64", "usr", "bin", "etc"))
    return root


def chroot_cmd(root: Path, *args: str) -> list[str]:
    """Run inside `root` as its `/`: as root with chroot, else in a user namespace."""
    base = ["chroot", str(root), *args]
    return base if os.geteuid() == 0 else ["unshare", "--map-root-user", *base]


def test_linux_x64_binary_is_static_and_runs_in_an_empty_root(dist, tmp_path):
    """The musl x64 binary needs no loader or libc: in a root with nothing else, `--version`
    (as aib and as every step's name) and `aib validate` of the bundled files work."""
    aib = dist / LINUX_X64 / "aib"
    facts = elf_facts(aib)
    assert facts == {"machine": "x86_64", "interp": False, "needed": False}, facts
    root = empty_root(tmp_path, dist / LINUX_X64)
    res = run(chroot_cmd(root, "/aib", "--version"))
    assert res.returncode == 0 and res.stdout.strip() == f"aib {VERSION}", res.stdout + res.stderr
    for step in STEPS:
        res = run(chroot_cmd(root, f"/{step}", "--version"))
        assert res.returncode == 0 and res.stdout.strip() == f"{step} {VERSION}", res.stdout + res.stderr
    # chroot starts in the new root, where parameters/ lies.
    check_validate_output(run(chroot_cmd(root, "/aib", "validate")))


def test_linux_arm64_binary_runs_under_qemu(dist, tmp_path):
    """The musl arm64 binary is an aarch64 static executable; under qemu-aarch64, with an empty
    folder as its root for any library lookup, `--version` and `aib validate` work."""
    qemu = tool("qemu-aarch64")
    facts = elf_facts(dist / LINUX_ARM64 / "aib")
    assert facts == {"machine": "aarch64", "interp": False, "needed": False}, facts
    root = empty_root(tmp_path, dist / LINUX_ARM64)
    emulate = [qemu, "-L", str(root)]
    res = run([*emulate, str(root / "aib"), "--version"])
    assert res.returncode == 0 and res.stdout.strip() == f"aib {VERSION}", res.stdout + res.stderr
    res = run([*emulate, str(root / "wait-for-build"), "--version"])
    assert res.returncode == 0 and res.stdout.strip() == f"wait-for-build {VERSION}", res.stdout + res.stderr
    check_validate_output(run([*emulate, str(root / "aib"), "validate"], cwd=root))


def test_windows_binary_runs_under_wine(dist, tmp_path, wine_env):
    """The Windows binary is an x86-64 PE; under Wine `aib.exe --version`, a step by its own
    `.exe` name, and `aib validate` of the bundled files work."""
    aib = dist / WINDOWS_X64 / "aib.exe"
    assert pe_machine(aib) == 0x8664
    root = empty_root(tmp_path, dist / WINDOWS_X64)
    res = run(["wine", str(root / "aib.exe"), "--version"], env=wine_env)
    assert res.returncode == 0 and res.stdout.strip() == f"aib {VERSION}", res.stdout + res.stderr
    res = run(["wine", str(root / "upload-scripts.exe"), "--version"], env=wine_env)
    assert res.returncode == 0 and res.stdout.strip() == f"upload-scripts {VERSION}", res.stdout + res.stderr
    check_validate_output(run(["wine", str(root / "aib.exe"), "validate"], cwd=root, env=wine_env))


def azure_env(emu) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "TF_BUILD", "AZURE_"))}
    env.update(
        SSL_CERT_FILE=emu.ca_file,
        AZURE_CLIENT_ID=emu.client_id,
        AZURE_CLIENT_SECRET=emu.client_secret,
        AZURE_TENANT_ID=emu.tenant_id,
        AZURE_SUBSCRIPTION_ID=emu.subscription_id,
        AIB_ARM_ENDPOINT=emu.url,
        AIB_AUTHORITY_HOST=emu.url,
        NO_COLOR="1",
    )
    return env


def grant_blob_data_contributor(emu) -> None:
    """What an admin does once for a pipeline's principal (Owner has no data access)."""
    ctx = ssl.create_default_context(cafile=emu.ca_file)
    form = urllib.parse.urlencode({
        "grant_type": "client_credentials", "client_id": emu.client_id, "client_secret": emu.client_secret,
        "scope": "https://management.azure.com/.default",
    }).encode()
    with urllib.request.urlopen(f"{emu.url}/{emu.tenant_id}/oauth2/v2.0/token", form, context=ctx) as resp:
        token = json.loads(resp.read())["access_token"]
    sub = f"/subscriptions/{emu.subscription_id}"
    body = json.dumps({"properties": {
        "roleDefinitionId": f"{sub}/providers/Microsoft.Authorization/roleDefinitions/ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        "principalId": emu.object_id, "principalType": "ServicePrincipal",
    }}).encode()
    req = urllib.request.Request(
        f"{emu.url}{sub}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}?api-version=2022-04-01",
        body, method="PUT", headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, context=ctx):
        pass


def test_windows_upload_what_if_matches_linux_against_the_emulator(dist, tmp_path, wine_env, emulator):
    """From Windows (a `Z:\\…` parameter path, folders walked with `\\`, a CRLF script),
    `upload-scripts --what-if` plans exactly what Linux plans: the same blob names with `/`,
    MD5s and SHA-256s of the unchanged bytes, content types, actions and CRLF warning."""
    work = tmp_path / "repo"
    shutil.copytree(ROOT / "parameters", work / "parameters")
    scripts = work / "scripts" / "uploads" / "linux"
    shutil.copytree(ROOT / "scripts" / "uploads" / "linux", scripts)
    (scripts / "lib" / "nested").mkdir(parents=True)
    (scripts / "lib" / "nested" / "helpers.sh").write_bytes(b"#!/bin/bash\r\necho crlf\r\n")
    (scripts / "lib" / "settings.json").write_bytes(b'{"a": 1}\n')
    env = azure_env(emulator)
    linux = str(dist / LINUX_X64 / "upload-scripts")

    # Arrange: the infrastructure, a data role, and every file uploaded once from Linux; then
    # one file changes, so the plan holds both actions.
    res = run([str(dist / LINUX_X64 / "deploy-infra"), "--env", "local"], cwd=work, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    grant_blob_data_contributor(emulator)
    res = run([linux, "--env", "local"], cwd=work, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    (scripts / "lib" / "settings.json").write_bytes(b'{"a": 2}\r\n')

    # Act
    on_linux = run([linux, "--env", "local", "--what-if", "--output", "json"], cwd=work, env=env)
    windows_params = "Z:" + str(work / "parameters" / "local.image.parameters.json").replace("/", "\\")
    on_windows = run(
        ["wine", str(dist / WINDOWS_X64 / "upload-scripts.exe"), "--parameters", windows_params,
         "--what-if", "--output", "json"],
        cwd=work, env={**env, **{k: wine_env[k] for k in ("WINEPREFIX", "WINEDEBUG", "WINEDLLOVERRIDES")}},
    )

    # Assert
    assert on_linux.returncode == 0, on_linux.stdout + on_linux.stderr
    assert on_windows.returncode == 0, on_windows.stdout + on_windows.stderr
    doc_linux, doc_windows = json.loads(on_linux.stdout), json.loads(on_windows.stdout)
    # Only the wall time and the folder as each OS spells it may differ.
    for doc in (doc_linux, doc_windows):
        doc["outcome"].pop("elapsedMs")
        doc["outcome"].pop("folder")
        doc["summary"] = re.sub(r"\d+(\.\d+)? ?m?s\b", "<time>", doc["summary"])
    assert doc_windows == doc_linux
    plan_windows = doc_windows["outcome"]
    names = {f["name"]: f["action"] for f in plan_windows["files"]}
    assert names["lib/nested/helpers.sh"] == "unchanged"
    assert names["lib/settings.json"] == "wouldUpload"
    assert sum(a == "wouldUpload" for a in names.values()) == 1, names
    assert plan_windows["uploaded"] == 1 and plan_windows["skipped"] == len(names) - 1
    for out in (on_linux.stderr, on_windows.stderr):
        assert "helpers.sh has CRLF line endings" in out.replace("\\", "/"), out
