<#
.SYNOPSIS
    Installs the pipeline agents' software on a Linux (Ubuntu) image: everything after PowerShell 7.

.DESCRIPTION
    Image Builder runs this after Install-LinuxPowerShell.sh, which installed pwsh and Microsoft's
    package repository for the running Ubuntu release. It installs the Azure CLI, the .NET SDK and
    runtime, a `dotnet nuget` source, Terraform, azcopy, the PowerShell modules and the Azure CLI
    extensions the agents use, at the versions in $Versions below (the one table to edit).

    Every component logs one line when it starts and one when it ends:
        [aib] component=<name> status=start|done|skipped|failed version=<version> seconds=<n>
    Those lines end up in customization.log, which wait-for-build streams. A component already at
    the wanted version is skipped, so running the script twice changes nothing. The first failure
    stops the script with a message naming the component. What got installed is recorded in
    /etc/aib/image-manifest.json. Package caches are cleaned at the end to keep the image small.
#>
#Requires -Version 7.2
[CmdletBinding()]
param()

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$ProgressPreference = 'SilentlyContinue'
# Native commands' exit codes are checked by Invoke-Native, where the message names the command.
$PSNativeCommandUseErrorActionPreference = $false

# --- Versions: the one table to edit ------------------------------------------------------------
# 'latest' = the newest version the source offers (apt repository, PowerShell Gallery, Azure CLI
# extension index); otherwise an exact version (apt versions match by prefix: '1.9.8' = '1.9.8-1').
# Keys: plain names are tools; 'psmodule:<Name>' are PowerShell Gallery modules; 'azext:<name>' are
# Azure CLI extensions. The README's "What the image contains" table is generated from this table.
$Versions = [ordered]@{
    'azure-cli'                = 'latest'
    'dotnet-sdk'               = '8.0'        # a .NET channel: the newest patch of dotnet-sdk-8.0
    'dotnet-runtime'           = '8.0'        # a .NET channel: dotnet-runtime-8.0 and aspnetcore-runtime-8.0
    'nuget-source'             = 'nuget.org'  # the `dotnet nuget` source name ($NuGetSourceUrl)
    'terraform'                = '1.9.8'
    'azcopy'                   = 'latest'
    'psmodule:PowerShellGet'   = '2.2.5'
    'psmodule:Pester'          = '5.6.1'
    'psmodule:PSScriptAnalyzer' = '1.23.0'
    'psmodule:powershell-yaml' = '0.4.7'
    'psmodule:Az'              = '12.4.0'
    'psmodule:Logging'         = '4.8.5'
    'psmodule:PoshRSJob'       = '1.7.4.4'
    'psmodule:ThreadJob'       = '2.0.3'
    'psmodule:JWTDetails'      = 'latest'
    'psmodule:OMSIngestionAPI' = '1.6.0'
    'psmodule:AzureAD'         = '2.0.2.182'
    'psmodule:ImportExcel'     = '7.8.6'
    'azext:azure-devops'       = 'latest'
    'azext:aks-preview'        = 'latest'
}
# -------------------------------------------------------------------------------------------------

# Other settings (not versions).
$NuGetSourceUrl = 'https://api.nuget.org/v3/index.json'
$ManifestPath = '/etc/aib/image-manifest.json'
$ManifestOs = 'linux'
# Azure CLI extensions go to one machine-wide folder (exported as AZURE_EXTENSION_DIR in
# /etc/environment) so the agent's user sees them, not only the user that built the image.
$AzExtensionDir = '/opt/aib/az-cliextensions'
$ScriptName = 'Initialize-LinuxSoftware.ps1'
# A fresh VM often runs unattended-upgrades at boot: apt waits for its dpkg lock instead of failing.
$AptLockWait = @('-o', 'DPkg::Lock::Timeout=600')
$WorkDir = Join-Path ([IO.Path]::GetTempPath()) "aib-initialize-$PID"

# Installing packages and AllUsers modules needs root: re-run as root when started without it.
if ((& id -u) -ne '0') {
    # -H: root's own home, so caches and settings never land root-owned in the builder's home.
    & sudo -H pwsh -NoProfile -NonInteractive -File $PSCommandPath
    exit $LASTEXITCODE
}

$env:DEBIAN_FRONTEND = 'noninteractive'
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'
$env:DOTNET_NOLOGO = '1'
$env:AZURE_EXTENSION_DIR = $AzExtensionDir
$env:AZURE_CORE_COLLECT_TELEMETRY = 'false'
$script:AptUpdateNeeded = $true

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

# --- PowerShell modules and Azure CLI extensions (the same in both Initialize scripts) -----------

# Installs one PowerShell Gallery module machine-wide (AllUsers); Key is 'psmodule:<Name>'.
function Install-ModuleComponent {
    param(
        [Parameter(Mandatory)][string]$Key,
        [Parameter(Mandatory)][string]$Wanted
    )
    $Module = $Key.Substring('psmodule:'.Length)
    Invoke-Component -Name $Key -Wanted $Wanted `
        -Installed {
            $found = @(Get-Module -ListAvailable -Name $Module | Sort-Object Version -Descending)
            if ($Wanted -ne 'latest') { $found = @($found | Where-Object { "$($_.Version)" -eq $Wanted }) }
            if ($found.Count -gt 0) { return "$($found[0].Version)" }
            return $null
        } `
        -Resolve {
            param($w)
            if ($w -ne 'latest') { return $w }
            $newest = Invoke-WithRetry -Description "find module $Module" -ScriptBlock {
                Find-Module -Name $Module -Repository PSGallery
            }
            return "$($newest.Version)"
        } `
        -Install {
            param($version)
            $options = @{ Name = $Module; RequiredVersion = $version; Repository = 'PSGallery'; Scope = 'AllUsers'; Force = $true }
            $known = (Get-Command -Name Install-Module).Parameters
            if ($known.ContainsKey('AllowClobber')) { $options['AllowClobber'] = $true }
            # Windows ships Pester 3 signed with another certificate: a newer Pester needs this.
            if ($Module -eq 'Pester' -and $known.ContainsKey('SkipPublisherCheck')) { $options['SkipPublisherCheck'] = $true }
            Invoke-WithRetry -Description "install module $Module $version" -Attempts 3 -ScriptBlock {
                Install-Module @options
            }
        }
    if ($Module -eq 'PowerShellGet') {
        # Use the new PowerShellGet for the modules that follow (Windows PowerShell ships 1.0.0.1).
        Remove-Module -Name @('PowerShellGet', 'PackageManagement') -Force -ErrorAction SilentlyContinue
        Import-Module -Name PowerShellGet -MinimumVersion '2.0' -Force
    }
}

# Installs one Azure CLI extension into $env:AZURE_EXTENSION_DIR; Key is 'azext:<name>'.
function Install-AzExtensionComponent {
    param(
        [Parameter(Mandatory)][string]$Key,
        [Parameter(Mandatory)][string]$Wanted
    )
    $Extension = $Key.Substring('azext:'.Length)
    Invoke-Component -Name $Key -Wanted $Wanted `
        -Installed {
            $shown = Get-NativeOutput -FilePath az -ArgumentList @('extension', 'show', '--name', $Extension, '--query', 'version', '--output', 'tsv')
            if ($shown.ExitCode -eq 0 -and $shown.Lines.Count -gt 0) { return $shown.Lines[0].Trim() }
            return $null
        } `
        -Resolve {
            param($w)
            if ($w -ne 'latest') { return $w }
            return Invoke-WithRetry -Description "look up the newest $Extension" -ScriptBlock {
                $listed = Get-NativeOutput -FilePath az -ArgumentList @('extension', 'list-available', '--query', "[?name=='$Extension'].version", '--output', 'tsv')
                if ($listed.ExitCode -ne 0 -or $listed.Lines.Count -eq 0) { throw "az extension list-available does not list $Extension" }
                $listed.Lines[0].Trim()
            }
        } `
        -Install {
            param($version)
            Invoke-WithRetry -Description "az extension add $Extension $version" -Attempts 3 -ScriptBlock {
                $null = Get-NativeOutput -FilePath az -ArgumentList @('extension', 'remove', '--name', $Extension)
                Invoke-Native -FilePath az -ArgumentList @('extension', 'add', '--name', $Extension, '--version', $version, '--yes')
            }
        }
}

# --- apt ------------------------------------------------------------------------------------------

function Get-OsRelease {
    $values = @{}
    foreach ($line in Get-Content -LiteralPath '/etc/os-release') {
        if ($line -match '^([A-Z_]+)=(.*)$') { $values[$Matches[1]] = $Matches[2].Trim('"') }
    }
    return $values
}

function Update-AptIndex {
    if ($script:AptUpdateNeeded) {
        Invoke-WithRetry -Description 'apt-get update' -ScriptBlock { Invoke-Native -FilePath apt-get -ArgumentList (@($AptLockWait) + @('update', '-q')) }
        $script:AptUpdateNeeded = $false
    }
}

# Adds an apt repository (signed by the key at KeyUrl) unless it is already configured.
function Add-AptRepository {
    param(
        [Parameter(Mandatory)][string]$Name,
        [Parameter(Mandatory)][string]$KeyUrl,
        [Parameter(Mandatory)][string]$Uri,
        [Parameter(Mandatory)][string]$Suite
    )
    $keyring = "/etc/apt/keyrings/aib-$Name.gpg"
    $listFile = "/etc/apt/sources.list.d/aib-$Name.list"
    $arch = (Get-NativeOutput -FilePath dpkg -ArgumentList @('--print-architecture')).Lines[0].Trim()
    $line = "deb [arch=$arch signed-by=$keyring] $Uri $Suite main"
    if ((Test-Path -LiteralPath $listFile) -and ((Get-Content -Raw -LiteralPath $listFile).Trim() -eq $line)) {
        return
    }
    New-Item -ItemType Directory -Force -Path '/etc/apt/keyrings' | Out-Null
    $key = Join-Path $WorkDir "$Name.asc"
    Invoke-Download -Uri $KeyUrl -OutFile $key
    Invoke-Native -FilePath gpg -ArgumentList @('--batch', '--yes', '--dearmor', '--output', $keyring, $key)
    Set-Content -LiteralPath $listFile -Value $line -Encoding utf8NoBOM
    $script:AptUpdateNeeded = $true
}

function Get-AptInstalledVersion {
    param([Parameter(Mandatory)][string]$Package)
    $query = Get-NativeOutput -FilePath dpkg-query -ArgumentList @('-W', '--showformat=${Status}|${Version}', $Package)
    if ($query.ExitCode -ne 0 -or $query.Lines.Count -eq 0) { return $null }
    $status, $version = $query.Lines[0] -split '\|', 2
    if ($status -ne 'install ok installed') { return $null }
    return $version
}

# The repository's version string for Wanted: 'latest' = apt's candidate, '1.9.8' = '1.9.8-1'.
function Resolve-AptVersion {
    param(
        [Parameter(Mandatory)][string]$Package,
        [Parameter(Mandatory)][string]$Wanted
    )
    Update-AptIndex
    if ($Wanted -eq 'latest') {
        $candidate = (Get-NativeOutput -FilePath apt-cache -ArgumentList @('policy', $Package)).Lines | Select-String -Pattern '^\s*Candidate:\s*(\S+)' | Select-Object -First 1
        if (-not $candidate -or $candidate.Matches[0].Groups[1].Value -eq '(none)') {
            throw "no apt repository offers the package $Package"
        }
        return $candidate.Matches[0].Groups[1].Value
    }
    $offered = @((Get-NativeOutput -FilePath apt-cache -ArgumentList @('madison', $Package)).Lines | ForEach-Object { ($_ -split '\|')[1].Trim() })
    $match = $offered | Where-Object { Test-VersionMatch -Installed $_ -Wanted $Wanted } | Select-Object -First 1
    if (-not $match) {
        throw "apt offers no version $Wanted of $Package (offered: $($offered -join ', '))"
    }
    return $match
}

function Install-AptComponent {
    param(
        [Parameter(Mandatory)][string]$Name,
        [Parameter(Mandatory)][string]$Package,
        [Parameter(Mandatory)][string]$Wanted,
        # The version asked of apt when it differs from the table's (a .NET channel is a package name).
        [string]$AptWanted,
        [string[]]$ExtraPackages = @(),
        [scriptblock]$Repository
    )
    if (-not $AptWanted) { $AptWanted = $Wanted }
    # The script blocks see $Package, $AptWanted, $ExtraPackages and $Repository through
    # PowerShell's dynamic scoping: they run inside Invoke-Component, called from here.
    Invoke-Component -Name $Name -Wanted $Wanted `
        -Installed { Get-AptInstalledVersion -Package $Package } `
        -Resolve {
            if ($Repository) { & $Repository }
            Resolve-AptVersion -Package $Package -Wanted $AptWanted
        } `
        -Install {
            param($version)
            $packages = @("$Package=$version") + $ExtraPackages
            Invoke-WithRetry -Description "apt-get install $Package" -Attempts 3 -ScriptBlock {
                Invoke-Native -FilePath apt-get -ArgumentList (@($AptLockWait) + @('install', '-y', '-q', '--no-install-recommends') + $packages)
            }
        }
}

# --- Components -----------------------------------------------------------------------------------

New-Item -ItemType Directory -Force -Path $WorkDir | Out-Null
$os = Get-OsRelease
if ($os['ID'] -ne 'ubuntu') { throw "[aib] this script supports Ubuntu; /etc/os-release says ID=$($os['ID'])" }
$codename = $os['VERSION_CODENAME']

Install-AptComponent -Name 'azure-cli' -Package 'azure-cli' -Wanted $Versions['azure-cli'] -Repository {
    Add-AptRepository -Name 'azure-cli' -KeyUrl 'https://packages.microsoft.com/keys/microsoft.asc' `
        -Uri 'https://packages.microsoft.com/repos/azure-cli/' -Suite $codename
}

# Ubuntu 22.04 and later publish .NET themselves; mixing their packages with Microsoft's breaks
# `dotnet`, so Microsoft's .NET packages are pinned away there (Microsoft's documented fix).
$dotnetPin = {
    if ([version]$os['VERSION_ID'] -ge [version]'22.04') {
        $pin = "Package: dotnet* aspnetcore* netstandard*`nPin: origin `"packages.microsoft.com`"`nPin-Priority: -10`n"
        $pinFile = '/etc/apt/preferences.d/aib-dotnet'
        if (-not (Test-Path -LiteralPath $pinFile) -or (Get-Content -Raw -LiteralPath $pinFile) -ne $pin) {
            Set-Content -LiteralPath $pinFile -Value $pin -NoNewline -Encoding utf8NoBOM
            $script:AptUpdateNeeded = $true
        }
    }
}
Install-AptComponent -Name 'dotnet-sdk' -Package "dotnet-sdk-$($Versions['dotnet-sdk'])" -Wanted $Versions['dotnet-sdk'] `
    -AptWanted 'latest' -Repository $dotnetPin
Install-AptComponent -Name 'dotnet-runtime' -Package "dotnet-runtime-$($Versions['dotnet-runtime'])" -Wanted $Versions['dotnet-runtime'] `
    -AptWanted 'latest' -ExtraPackages @("aspnetcore-runtime-$($Versions['dotnet-runtime'])") -Repository $dotnetPin

Invoke-Component -Name 'nuget-source' -Wanted $Versions['nuget-source'] `
    -Installed {
        $sourceName = $Versions['nuget-source']
        $listed = Get-NativeOutput -FilePath dotnet -ArgumentList @('nuget', 'list', 'source', '--format', 'short')
        if ($listed.ExitCode -eq 0 -and ($listed.Lines | Where-Object { $_ -match [regex]::Escape($NuGetSourceUrl) })) { return $sourceName }
        return $null
    } `
    -Install {
        param($sourceName)
        Invoke-Native -FilePath dotnet -ArgumentList @('nuget', 'add', 'source', $NuGetSourceUrl, '--name', $sourceName)
    }

Install-AptComponent -Name 'terraform' -Package 'terraform' -Wanted $Versions['terraform'] -Repository {
    Add-AptRepository -Name 'hashicorp' -KeyUrl 'https://apt.releases.hashicorp.com/gpg' `
        -Uri 'https://apt.releases.hashicorp.com' -Suite $codename
}

# azcopy comes from Microsoft's repository for this release (added by Install-LinuxPowerShell.sh).
Install-AptComponent -Name 'azcopy' -Package 'azcopy' -Wanted $Versions['azcopy']

# PowerShell modules, machine-wide (AllUsers) from the PowerShell Gallery.
Set-PSRepository -Name PSGallery -InstallationPolicy Trusted
foreach ($key in @($Versions.Keys | Where-Object { $_ -like 'psmodule:*' })) {
    Install-ModuleComponent -Key $key -Wanted $Versions[$key]
}

# Azure CLI extensions, in one machine-wide folder that every user's `az` finds.
New-Item -ItemType Directory -Force -Path $AzExtensionDir | Out-Null
$environmentLine = "AZURE_EXTENSION_DIR=$AzExtensionDir"
if (-not (Select-String -LiteralPath '/etc/environment' -SimpleMatch -Pattern $environmentLine -Quiet)) {
    Add-Content -LiteralPath '/etc/environment' -Value $environmentLine
}
foreach ($key in @($Versions.Keys | Where-Object { $_ -like 'azext:*' })) {
    Install-AzExtensionComponent -Key $key -Wanted $Versions[$key]
}
Invoke-Native -FilePath chmod -ArgumentList @('-R', 'a+rX', $AzExtensionDir)

# --- Clean up: keep the image small -------------------------------------------------------------
Invoke-Step -Name 'cleanup' -Version 'package-caches' -ScriptBlock {
    Invoke-Native -FilePath apt-get -ArgumentList (@($AptLockWait) + @('autoremove', '-y', '-q'))
    Invoke-Native -FilePath apt-get -ArgumentList (@($AptLockWait) + @('clean'))
    Invoke-Native -FilePath dotnet -ArgumentList @('nuget', 'locals', 'all', '--clear')
    Remove-Item -LiteralPath $WorkDir -Recurse -Force -ErrorAction SilentlyContinue
}
Write-Host "[aib] Initialize-LinuxSoftware.ps1 finished; manifest: $ManifestPath"
