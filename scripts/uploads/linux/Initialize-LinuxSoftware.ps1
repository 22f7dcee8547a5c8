# Installs the agent software on Linux (everything after PowerShell 7).
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$Versions = @{
    'terraform' = '1.9.8'
}

function Write-AibLog([string]$Component, [string]$Status, [string]$Version, [int]$Seconds) {
    Write-Output "[aib] component=$Component status=$Status version=$Version seconds=$Seconds"
}

Write-AibLog -Component 'initialize' -Status 'start' -Version $Versions['terraform'] -Seconds 0
