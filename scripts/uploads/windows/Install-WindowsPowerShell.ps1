<#
.SYNOPSIS
    Installs PowerShell 7 on a Windows image.

.DESCRIPTION
    Image Builder runs this first in a Windows image build, with Windows PowerShell 5.1 (so the
    script sticks to what 5.1 understands). It installs PowerShell 7 from the official MSI on
    GitHub at the version in $Versions below ('latest' = the current stable release), puts pwsh on
    the PATH and records it in C:\ProgramData\aib\image-manifest.json. Initialize-WindowsSoftware.ps1
    installs the rest. A PowerShell 7 already at the wanted version is skipped.

    Every component logs one line when it starts and one when it ends:
        [aib] component=<name> status=start|done|skipped|failed version=<version> seconds=<n>
    The first failure stops the script with a message naming the component.
#>
[CmdletBinding()]
param()

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$ProgressPreference = 'SilentlyContinue'
# Native commands' exit codes are checked by Invoke-Native, where the message names the command.
$PSNativeCommandUseErrorActionPreference = $false

# --- Versions: the one table to edit ------------------------------------------------------------
# 'latest' = the current stable release (https://aka.ms/pwsh-buildinfo-stable); otherwise an exact
# version such as 7.4.6. The README's "What the image contains" table is generated from this table.
$Versions = [ordered]@{
    'powershell' = '7.4.6'
}
# -------------------------------------------------------------------------------------------------

# Other settings (not versions).
$ManifestPath = Join-Path $env:ProgramData 'aib\image-manifest.json'
$ManifestOs = 'windows'
$ScriptName = 'Install-WindowsPowerShell.ps1'
$WorkDir = Join-Path $env:TEMP "aib-powershell-$PID"

# Windows PowerShell 5.1 may default to TLS 1.0, which GitHub and aka.ms refuse.
[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12

# --- Helpers (the same in every aib customization script; Windows PowerShell 5.1 compatible) -----

# The one log line format of every aib customization script.
function Write-AibLog {
    param(
        [Parameter(Mandatory)][string]$Component,
        [Parameter(Mandatory)][ValidateSet('start', 'done', 'skipped', 'failed')][string]$Status,
        [Parameter(Mandatory)][AllowEmptyString()][string]$Version,
        [Parameter(Mandatory)][double]$Seconds
    )
    if (-not $Version) { $Version = 'unknown' }
    Write-Host ('[aib] component={0} status={1} version={2} seconds={3}' -f $Component, $Status, $Version, [int][math]::Round($Seconds))
}

# Runs a native command, shows its output and throws when it exits non-zero. Windows PowerShell
# 5.1 turns a native command's stderr lines into terminating errors under 'Stop', hence 'Continue'.
function Invoke-Native {
    param(
        [Parameter(Mandatory)][string]$FilePath,
        [string[]]$ArgumentList = @(),
        [int[]]$SuccessCodes = @(0)
    )
    if (-not (Get-Command -Name $FilePath -ErrorAction SilentlyContinue)) { throw "command not found: $FilePath" }
    $ErrorActionPreference = 'Continue'
    & $FilePath @ArgumentList 2>&1 | ForEach-Object { "$_" } | Out-Host
    $code = $LASTEXITCODE
    $ErrorActionPreference = 'Stop'
    if ($SuccessCodes -notcontains $code) {
        throw "'$FilePath $($ArgumentList -join ' ')' exited with code $code"
    }
}

# Runs a native command quietly and returns its exit code and standard output lines (for queries
# such as "which version is installed", where a non-zero exit means "not there").
function Get-NativeOutput {
    param(
        [Parameter(Mandatory)][string]$FilePath,
        [string[]]$ArgumentList = @()
    )
    if (-not (Get-Command -Name $FilePath -ErrorAction SilentlyContinue)) {
        return [pscustomobject]@{ ExitCode = 127; Lines = @() }
    }
    $ErrorActionPreference = 'Continue'
    $lines = @(& $FilePath @ArgumentList 2>$null | ForEach-Object { "$_" })
    $code = $LASTEXITCODE
    $ErrorActionPreference = 'Stop'
    return [pscustomobject]@{ ExitCode = $code; Lines = $lines }
}

# Runs a script block until it succeeds, waiting 5, 10, 20... seconds between attempts: downloads
# and calls to package indexes go through it.
function Invoke-WithRetry {
    param(
        [Parameter(Mandatory)][string]$Description,
        [Parameter(Mandatory)][scriptblock]$ScriptBlock,
        [int]$Attempts = 5,
        [int]$DelaySeconds = 5
    )
    for ($attempt = 1; ; $attempt++) {
        try {
            return & $ScriptBlock
        }
        catch {
            if ($attempt -ge $Attempts) {
                throw "$Description failed after $Attempts attempts: $($_.Exception.Message)"
            }
            Write-Host "[aib] $Description failed (attempt $attempt of $Attempts), retrying in $DelaySeconds s: $($_.Exception.Message)"
            Start-Sleep -Seconds $DelaySeconds
            $DelaySeconds *= 2
        }
    }
}

# Downloads a URL to a file, with retries.
function Invoke-Download {
    param(
        [Parameter(Mandatory)][string]$Uri,
        [Parameter(Mandatory)][string]$OutFile
    )
    Invoke-WithRetry -Description "download $Uri" -ScriptBlock {
        Invoke-WebRequest -Uri $Uri -OutFile $OutFile -UseBasicParsing
    }
}

# True when an installed version is the wanted one ('8.0' also matches '8.0.404-1'); 'latest'
# that could not be resolved before installing accepts any installed version.
function Test-VersionMatch {
    param([string]$Installed, [string]$Wanted)
    if (-not $Installed) { return $false }
    if ($Wanted -eq 'latest') { return $true }
    return ($Installed -eq $Wanted) -or ($Installed -match ('^' + [regex]::Escape($Wanted) + '[-~+.]'))
}

# Adds or replaces one component in the image manifest, so agents and users see what the image has.
function Add-ManifestEntry {
    param(
        [Parameter(Mandatory)][string]$Name,
        [Parameter(Mandatory)][string]$Version,
        [Parameter(Mandatory)][string]$Wanted
    )
    $components = @()
    if (Test-Path -LiteralPath $ManifestPath) {
        $old = Get-Content -Raw -LiteralPath $ManifestPath | ConvertFrom-Json
        if ($old.PSObject.Properties['components']) {
            $components = @($old.components | Where-Object { $_.name -ne $Name })
        }
    }
    $components += , ([ordered]@{ name = $Name; version = $Version; wanted = $Wanted; script = $ScriptName })
    $manifest = [ordered]@{
        schemaVersion = 1
        os            = $ManifestOs
        updated       = (Get-Date).ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ')
        components    = $components
    }
    New-Item -ItemType Directory -Force -Path (Split-Path -Parent $ManifestPath) | Out-Null
    $json = $manifest | ConvertTo-Json -Depth 5
    [IO.File]::WriteAllText($ManifestPath, $json, (New-Object Text.UTF8Encoding $false))
}

# Runs one step that has no version to compare (clean-up): logs start and done, or failed and stops.
function Invoke-Step {
    param(
        [Parameter(Mandatory)][string]$Name,
        [Parameter(Mandatory)][string]$Version,
        [Parameter(Mandatory)][scriptblock]$ScriptBlock
    )
    $watch = [Diagnostics.Stopwatch]::StartNew()
    Write-AibLog -Component $Name -Status start -Version $Version -Seconds 0
    try {
        & $ScriptBlock | Out-Host
    }
    catch {
        Write-AibLog -Component $Name -Status failed -Version $Version -Seconds $watch.Elapsed.TotalSeconds
        throw "[aib] component '$Name' failed: $($_.Exception.Message)"
    }
    Write-AibLog -Component $Name -Status done -Version $Version -Seconds $watch.Elapsed.TotalSeconds
}

# Installs one component: logs start, skips it when the installed version is already the wanted
# one, otherwise installs, then logs done with the version found afterwards and its duration, and
# records it in the manifest. Any error stops the script with a message naming the component.
#   -Installed: returns the installed version (or $null).  -Resolve: turns 'latest' into a version
#   (it may return 'latest' when that needs the tool itself).  -Install: installs the version given.
# The script blocks see the caller's variables through PowerShell's dynamic scoping.
function Invoke-Component {
    param(
        [Parameter(Mandatory)][string]$Name,
        [Parameter(Mandatory)][string]$Wanted,
        [Parameter(Mandatory)][scriptblock]$Installed,
        [scriptblock]$Resolve,
        [Parameter(Mandatory)][scriptblock]$Install
    )
    $watch = [Diagnostics.Stopwatch]::StartNew()
    Write-AibLog -Component $Name -Status start -Version $Wanted -Seconds 0
    try {
        $target = $Wanted
        if ($Resolve) { $target = [string](& $Resolve $Wanted) }
        $current = [string](& $Installed)
        if ($target -ne 'latest' -and (Test-VersionMatch -Installed $current -Wanted $target)) {
            Write-AibLog -Component $Name -Status skipped -Version $current -Seconds $watch.Elapsed.TotalSeconds
        }
        else {
            & $Install $target | Out-Host
            $current = [string](& $Installed)
            if (-not (Test-VersionMatch -Installed $current -Wanted $target)) {
                throw "after installing, the version found is '$current', not '$target'"
            }
            Write-AibLog -Component $Name -Status done -Version $current -Seconds $watch.Elapsed.TotalSeconds
        }
        Add-ManifestEntry -Name $Name -Version $current -Wanted $Wanted
    }
    catch {
        Write-AibLog -Component $Name -Status failed -Version $Wanted -Seconds $watch.Elapsed.TotalSeconds
        throw "[aib] component '$Name' failed: $($_.Exception.Message)"
    }
}

# --- Components -----------------------------------------------------------------------------------

New-Item -ItemType Directory -Force -Path $WorkDir | Out-Null
$PwshPath = Join-Path $env:ProgramFiles 'PowerShell\7\pwsh.exe'
$Architecture = 'x64'
if ($env:PROCESSOR_ARCHITECTURE -eq 'ARM64') { $Architecture = 'arm64' }

Invoke-Component -Name 'powershell' -Wanted $Versions['powershell'] `
    -Installed {
        if (-not (Test-Path -LiteralPath $PwshPath)) { return $null }
        $reported = Get-NativeOutput -FilePath $PwshPath -ArgumentList @('-NoProfile', '-NonInteractive', '-Command', '$PSVersionTable.PSVersion.ToString()')
        if ($reported.ExitCode -ne 0 -or $reported.Lines.Count -eq 0) { return $null }
        return $reported.Lines[0].Trim()
    } `
    -Resolve {
        param($w)
        if ($w -ne 'latest') { return $w }
        $info = Invoke-WithRetry -Description 'look up the current PowerShell release' -ScriptBlock {
            Invoke-RestMethod -Uri 'https://aka.ms/pwsh-buildinfo-stable' -UseBasicParsing
        }
        # The file may come back as text rather than parsed JSON, depending on its content type.
        if ($info -is [string]) { $info = $info | ConvertFrom-Json }
        return ([string]$info.ReleaseTag).TrimStart('v')
    } `
    -Install {
        param($version)
        $msi = Join-Path $WorkDir "PowerShell-$version-win-$Architecture.msi"
        Invoke-Download -Uri "https://github.com/PowerShell/PowerShell/releases/download/v$version/PowerShell-$version-win-$Architecture.msi" -OutFile $msi
        # msiexec is a Windows (GUI) program: Start-Process -Wait is what waits for it to finish.
        $arguments = "/i `"$msi`" /quiet /norestart ADD_PATH=1 REGISTER_MANIFEST=1 USE_MU=0 ENABLE_MU=0"
        $process = Start-Process -FilePath 'msiexec.exe' -ArgumentList $arguments -Wait -PassThru
        # 3010 = installed, a restart is needed (the parameter files restart Windows after this step).
        if (@(0, 3010) -notcontains $process.ExitCode) {
            throw "msiexec $arguments exited with code $($process.ExitCode)"
        }
    }

# --- Clean up -------------------------------------------------------------------------------------
Invoke-Step -Name 'cleanup' -Version 'downloads' -ScriptBlock {
    Remove-Item -LiteralPath $WorkDir -Recurse -Force -ErrorAction SilentlyContinue
}
Write-Host "[aib] Install-WindowsPowerShell.ps1 finished; manifest: $ManifestPath"
