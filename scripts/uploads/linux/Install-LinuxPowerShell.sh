#!/usr/bin/env bash
# Installs PowerShell 7 from Microsoft's package repository for the running Ubuntu release.
# Runs first in the Linux image build; Initialize-LinuxSoftware.ps1 (run by pwsh) does the rest.
set -euo pipefail

declare -A VERSIONS=(
  [powershell]="latest"
)

log() { printf '[aib] component=%s status=%s version=%s seconds=%s\n' "$1" "$2" "$3" "$4"; }

start=$SECONDS
log powershell start "${VERSIONS[powershell]}" 0
# shellcheck source=/dev/null
. /etc/os-release
export DEBIAN_FRONTEND=noninteractive
curl -fsSL --retry 5 -o /tmp/packages-microsoft-prod.deb \
  "https://packages.microsoft.com/config/ubuntu/${VERSION_ID}/packages-microsoft-prod.deb"
sudo dpkg -i /tmp/packages-microsoft-prod.deb
rm -f /tmp/packages-microsoft-prod.deb
sudo apt-get update
sudo apt-get install -y powershell
log powershell done "$(pwsh -NoProfile -Command '$PSVersionTable.PSVersion.ToString()')" $((SECONDS - start))
