# Installs PowerShell 7 on Windows (Windows PowerShell 5.1 runs this script).
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$Versions = @{
    'powershell' = 'latest'
}

function Write-AibLog([string]$Component, [string]$Status, [string]$Version, [int]$Seconds) {
    Write-Output "[aib] component=$Component status=$Status version=$Version seconds=$Seconds"
}

Write-AibLog -Component 'powershell' -Status 'start' -Version $Versions['powershell'] -Seconds 0
