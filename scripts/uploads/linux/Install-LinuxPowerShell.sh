#!/usr/bin/env bash
# Install-LinuxPowerShell.sh - installs PowerShell 7 from Microsoft's package repository for the
# running Ubuntu release. It runs first in a Linux image build (Image Builder "Shell" step), because
# every later step (Initialize-LinuxSoftware.ps1) is a PowerShell script.
#
# What it does, in order: reads /etc/os-release, adds Microsoft's repository for that release
# (packages-microsoft-prod.deb for $VERSION_ID) unless it is already there, installs the
# `powershell` package at the version pinned below, records it in /etc/aib/image-manifest.json,
# and cleans the apt cache. Running it again on a machine that already has the wanted version
# changes nothing (the component is logged as skipped).
#
# Each component logs one line when it starts and one when it ends, in the format every aib
# customization script uses (they show up in customization.log, which wait-for-build streams):
#   [aib] component=<name> status=start|done|skipped|failed version=<version> seconds=<n>
set -euo pipefail

# --- Versions: the one table to edit ------------------------------------------------------------
# 'latest' = the newest version Microsoft's repository offers; otherwise a version such as 7.4.6
# (matched against the repository's package versions, e.g. 7.4.6-1.deb).
declare -A VERSIONS=(
  [powershell]="latest"
)
# -------------------------------------------------------------------------------------------------

# The environment may move these (the tests do); the defaults are what an image build uses.
readonly MANIFEST=${AIB_MANIFEST:-/etc/aib/image-manifest.json}
readonly OS_RELEASE=${AIB_OS_RELEASE:-/etc/os-release}
readonly RETRY_DELAY_SECONDS=${AIB_RETRY_DELAY_SECONDS:-5}
readonly SCRIPT_NAME=Install-LinuxPowerShell.sh
# A fresh VM often runs unattended-upgrades at boot: wait for its dpkg lock instead of failing.
readonly APT_LOCK_WAIT=(-o DPkg::Lock::Timeout=600)
WORK_DIR=$(mktemp -d /tmp/aib-pwsh.XXXXXX)
readonly WORK_DIR
export DEBIAN_FRONTEND=noninteractive

# Run privileged commands with sudo only when not already root (Image Builder may do either).
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  SUDO=(sudo --preserve-env=DEBIAN_FRONTEND)
fi

current_component=""
component_started=0
wanted=""

# log COMPONENT STATUS VERSION SECONDS - the one log line format.
log() {
  printf '[aib] component=%s status=%s version=%s seconds=%s\n' "$1" "$2" "$3" "$4"
}

# set -e stops at the first failing command; this exit trap then says which component failed.
on_exit() {
  local status=$?
  rm -rf "$WORK_DIR"
  if [ "$status" -ne 0 ] && [ -n "$current_component" ]; then
    log "$current_component" failed "${wanted:-unknown}" $((SECONDS - component_started))
    printf '[aib] error: component %s failed (exit status %s); see the output above\n' "$current_component" "$status" >&2
  fi
  exit "$status"
}
trap on_exit EXIT

# retry ATTEMPTS COMMAND... - runs COMMAND until it succeeds, waiting 5, 10, 20... seconds between
# attempts (AIB_RETRY_DELAY_SECONDS sets the first wait); downloads and apt's network calls go
# through it.
retry() {
  local attempts=$1 attempt=1 delay=$RETRY_DELAY_SECONDS
  shift
  until "$@"; do
    if [ "$attempt" -ge "$attempts" ]; then
      printf '[aib] error: failed after %s attempts: %s\n' "$attempts" "$*" >&2
      return 1
    fi
    printf '[aib] attempt %s of %s failed, retrying in %ss: %s\n' "$attempt" "$attempts" "$delay" "$*" >&2
    sleep "$delay"
    attempt=$((attempt + 1))
    delay=$((delay * 2))
  done
}

# installed_version PACKAGE - the installed version of a Debian package, or nothing.
installed_version() {
  # dpkg-query exits 1 for a package that was never installed: that is an answer, not an error.
  { dpkg-query -W --showformat='${Status}|${Version}' "$1" 2>/dev/null || true; } |
    awk -F'|' '$1 == "install ok installed" { print $2 }'
}

# resolve_version PACKAGE WANTED - the repository's version string for WANTED ('latest' = the
# candidate apt would install); fails when the repository does not offer it.
resolve_version() {
  local package=$1 wanted=$2 found
  if [ "$wanted" = latest ]; then
    found=$(apt-cache policy "$package" | awk '$1 == "Candidate:" { print $2 }')
    [ "$found" = "(none)" ] && found=""
  else
    found=$(apt-cache madison "$package" | awk -F'|' '{ gsub(/ /, "", $2); print $2 }' |
      grep -E "^${wanted//./\\.}([-~+.]|$)" | head -n 1 || true)
  fi
  if [ -z "$found" ]; then
    printf '[aib] error: the package repository offers no version "%s" of %s\n' "$wanted" "$package" >&2
    return 1
  fi
  printf '%s\n' "$found"
}

# add_microsoft_repository - packages-microsoft-prod.deb for this Ubuntu release, once.
add_microsoft_repository() {
  # shellcheck source=/dev/null
  . "$OS_RELEASE"
  if [ "${ID:-}" != ubuntu ]; then
    printf '[aib] error: this script supports Ubuntu; %s says ID=%s\n' "$OS_RELEASE" "${ID:-unknown}" >&2
    return 1
  fi
  if [ -z "$(installed_version packages-microsoft-prod)" ]; then
    retry 5 curl -fsSL -o "$WORK_DIR/packages-microsoft-prod.deb" \
      "https://packages.microsoft.com/config/ubuntu/${VERSION_ID}/packages-microsoft-prod.deb"
    "${SUDO[@]}" dpkg --force-confold -i "$WORK_DIR/packages-microsoft-prod.deb"
  fi
  retry 5 "${SUDO[@]}" apt-get "${APT_LOCK_WAIT[@]}" update -q
}

# write_manifest NAME VERSION WANTED - adds or replaces one component in the image manifest. The
# JSON is written by pwsh, which this script has just installed, so no jq is needed.
write_manifest() {
  "${SUDO[@]}" mkdir -p "$(dirname "$MANIFEST")"
  # shellcheck disable=SC2016 # the single quotes keep $ for PowerShell
  "${SUDO[@]}" env AIB_MANIFEST="$MANIFEST" AIB_NAME="$1" AIB_VERSION="$2" AIB_WANTED="$3" \
    AIB_SCRIPT="$SCRIPT_NAME" pwsh -NoProfile -NonInteractive -Command '
      $ErrorActionPreference = "Stop"
      $manifest = [ordered]@{ schemaVersion = 1; os = "linux"; updated = ""; components = @() }
      if (Test-Path $env:AIB_MANIFEST) {
        $old = Get-Content -Raw $env:AIB_MANIFEST | ConvertFrom-Json
        $manifest.components = @($old.components | Where-Object { $_.name -ne $env:AIB_NAME })
      }
      $manifest.components += ,([ordered]@{ name = $env:AIB_NAME; version = $env:AIB_VERSION; wanted = $env:AIB_WANTED; script = $env:AIB_SCRIPT })
      $manifest.updated = (Get-Date).ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ssZ")
      $manifest | ConvertTo-Json -Depth 5 | Set-Content -Encoding utf8NoBOM $env:AIB_MANIFEST'
}

# --- powershell ---------------------------------------------------------------------------------
current_component=powershell
component_started=$SECONDS
wanted=${VERSIONS[powershell]}
log powershell start "$wanted" 0
add_microsoft_repository
target=$(resolve_version powershell "$wanted")
installed=$(installed_version powershell)
if [ "$installed" = "$target" ]; then
  log powershell skipped "$installed" $((SECONDS - component_started))
else
  retry 3 "${SUDO[@]}" apt-get "${APT_LOCK_WAIT[@]}" install -y -q --no-install-recommends "powershell=$target"
  installed=$(installed_version powershell)
  log powershell "done" "$installed" $((SECONDS - component_started))
fi
# shellcheck disable=SC2016 # a PowerShell expression, not a shell one
pwsh -NoProfile -NonInteractive -Command '$PSVersionTable.PSVersion.ToString()' >/dev/null
write_manifest powershell "$installed" "$wanted"

# --- clean up: keep the image small ---------------------------------------------------------------
current_component=cleanup
component_started=$SECONDS
wanted=apt-cache
log cleanup start "$wanted" 0
"${SUDO[@]}" apt-get "${APT_LOCK_WAIT[@]}" clean
log cleanup "done" "$wanted" $((SECONDS - component_started))
current_component=""
