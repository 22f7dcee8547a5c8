<#
.SYNOPSIS
    Installs the pipeline agents' software on a Windows image.

.DESCRIPTION
    Image Builder runs this after Install-WindowsPowerShell.ps1 (and the restart after it), with
    Windows PowerShell 5.1, so the script sticks to what 5.1 understands. It installs Chocolatey,
    then with it the Azure CLI, Terraform and azcopy; the NuGet package provider; the PowerShell
    modules (machine-wide, so Windows PowerShell and PowerShell 7 both see them) and the Azure CLI
    extensions the agents use, at the versions in $Versions below (the one table to edit).

    Every component logs one line when it starts and one when it ends:
        [aib] component=<name> status=start|done|skipped|failed version=<version> seconds=<n>
    Those lines end up in customization.log, which wait-for-build streams. A component already at
    the wanted version is skipped, so running the script twice changes nothing. The first failure
    stops the script with a message naming the component. What got installed is recorded in
    C:\ProgramData\aib\image-manifest.json. Package caches are cleaned at the end.
#>
[CmdletBinding()]
param()

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$ProgressPreference = 'SilentlyContinue'
# Native commands' exit codes are checked by Invoke-Native, where the message names the command.
$PSNativeCommandUseErrorActionPreference = $false

# --- Versions: the one table to edit ------------------------------------------------------------
# 'latest' = the newest version the source offers (Chocolatey community repository, PowerShell
# Gallery, Azure CLI extension index); otherwise an exact version.
# Keys: plain names are tools; 'psmodule:<Name>' are PowerShell Gallery modules; 'azext:<name>' are
# Azure CLI extensions. The README's "What the image contains" table is generated from this table.
$Versions = [ordered]@{
    'chocolatey'               = '2.3.0'
    'azure-cli'                = 'latest'
    'nuget-provider'           = '2.8.5.201'
    'terraform'                = 'latest'
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
$ManifestPath = Join-Path $env:ProgramData 'aib\image-manifest.json'
$ManifestOs = 'windows'
$ScriptName = 'Initialize-WindowsSoftware.ps1'
$WorkDir = Join-Path $env:TEMP "aib-initialize-$PID"
# Chocolatey package ids of the tools installed with it.
$ChocolateyPackages = [ordered]@{
    'azure-cli' = 'azure-cli'
    'terraform' = 'terraform'
    'azcopy'    = 'azcopy10'
}
# Azure CLI extensions go to one machine-wide folder (the machine variable AZURE_EXTENSION_DIR) so
# the agent's account sees them, not only the account that built the image.
$AzExtensionDir = Join-Path $env:ProgramData 'aib\az-cliextensions'

# Windows PowerShell 5.1 may default to TLS 1.0, which the package sources refuse.
[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
$env:AZURE_EXTENSION_DIR = $AzExtensionDir
$env:AZURE_CORE_COLLECT_TELEMETRY = 'false'

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

# --- Chocolatey -----------------------------------------------------------------------------------

# Reloads PATH from the registry, so tools installed a moment ago are found in this session.
function Update-SessionPath {
    $env:Path = @(
        [Environment]::GetEnvironmentVariable('Path', 'Machine'),
        [Environment]::GetEnvironmentVariable('Path', 'User')
    ) -join ';'
}

# The installed version of a Chocolatey package, or $null.
function Get-ChocoInstalledVersion {
    param([Parameter(Mandatory)][string]$Package)
    $listed = Get-NativeOutput -FilePath choco -ArgumentList @('list', '--exact', $Package, '--limit-output')
    if ($listed.ExitCode -ne 0) { return $null }
    foreach ($line in $listed.Lines) {
        $id, $version = $line -split '\|', 2
        if ($id -eq $Package) { return $version }
    }
    return $null
}

function Install-ChocoComponent {
    param(
        [Parameter(Mandatory)][string]$Name,
        [Parameter(Mandatory)][string]$Package,
        [Parameter(Mandatory)][string]$Wanted
    )
    Invoke-Component -Name $Name -Wanted $Wanted `
        -Installed { Get-ChocoInstalledVersion -Package $Package } `
        -Resolve {
            param($w)
            if ($w -ne 'latest') { return $w }
            return Invoke-WithRetry -Description "look up the newest $Package" -ScriptBlock {
                $found = Get-NativeOutput -FilePath choco -ArgumentList @('search', $Package, '--exact', '--limit-output')
                $line = @($found.Lines | Where-Object { $_ -like "$Package|*" }) | Select-Object -First 1
                if ($found.ExitCode -ne 0 -or -not $line) { throw "the Chocolatey repository does not list $Package" }
                ($line -split '\|', 2)[1]
            }
        } `
        -Install {
            param($version)
            Invoke-WithRetry -Description "choco upgrade $Package $version" -Attempts 3 -ScriptBlock {
                # 3010 / 1641 = installed, a restart is needed.
                Invoke-Native -FilePath choco -SuccessCodes @(0, 1641, 3010) -ArgumentList @(
                    'upgrade', $Package, '--version', $version, '--yes', '--no-progress', '--allow-downgrade'
                )
            }
            Update-SessionPath
        }
}

# --- Components -----------------------------------------------------------------------------------

New-Item -ItemType Directory -Force -Path $WorkDir | Out-Null

Invoke-Component -Name 'chocolatey' -Wanted $Versions['chocolatey'] `
    -Installed {
        $reported = Get-NativeOutput -FilePath choco -ArgumentList @('--version')
        if ($reported.ExitCode -ne 0 -or $reported.Lines.Count -eq 0) { return $null }
        return $reported.Lines[-1].Trim()
    } `
    -Resolve {
        param($w)
        # 'latest' can be looked up only once Chocolatey is there; before that it installs the newest.
        if ($w -ne 'latest' -or -not (Get-Command -Name choco -ErrorAction SilentlyContinue)) { return $w }
        return Invoke-WithRetry -Description 'look up the newest chocolatey' -ScriptBlock {
            $found = Get-NativeOutput -FilePath choco -ArgumentList @('search', 'chocolatey', '--exact', '--limit-output')
            $line = @($found.Lines | Where-Object { $_ -like 'chocolatey|*' }) | Select-Object -First 1
            if ($found.ExitCode -ne 0 -or -not $line) { throw 'the Chocolatey repository does not list chocolatey' }
            ($line -split '\|', 2)[1]
        }
    } `
    -Install {
        param($version)
        if (Get-Command -Name choco -ErrorAction SilentlyContinue) {
            $arguments = @('upgrade', 'chocolatey', '--yes', '--no-progress', '--allow-downgrade')
            if ($version -ne 'latest') { $arguments += @('--version', $version) }
            Invoke-WithRetry -Description 'choco upgrade chocolatey' -Attempts 3 -ScriptBlock {
                Invoke-Native -FilePath choco -ArgumentList $arguments
            }
        }
        else {
            # The official installer honours $env:chocolateyVersion. It runs in its own process,
            # away from this script's strict mode, and its exit code is checked.
            if ($version -ne 'latest') { $env:chocolateyVersion = $version }
            $installer = Join-Path $WorkDir 'install-chocolatey.ps1'
            Invoke-Download -Uri 'https://community.chocolatey.org/install.ps1' -OutFile $installer
            Invoke-Native -FilePath powershell.exe -ArgumentList @(
                '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', $installer
            )
        }
        Update-SessionPath
    }

foreach ($name in $ChocolateyPackages.Keys) {
    Install-ChocoComponent -Name $name -Package $ChocolateyPackages[$name] -Wanted $Versions[$name]
}

Invoke-Component -Name 'nuget-provider' -Wanted $Versions['nuget-provider'] `
    -Installed {
        $found = @(Get-PackageProvider -ListAvailable -Name NuGet -ErrorAction SilentlyContinue | Sort-Object Version -Descending)
        if ($Versions['nuget-provider'] -ne 'latest') { $found = @($found | Where-Object { "$($_.Version)" -eq $Versions['nuget-provider'] }) }
        if ($found.Count -gt 0) { return "$($found[0].Version)" }
        return $null
    } `
    -Install {
        param($version)
        $options = @{ Name = 'NuGet'; Scope = 'AllUsers'; Force = $true; ForceBootstrap = $true }
        if ($version -eq 'latest') { $options['MinimumVersion'] = '2.8.5.201' } else { $options['RequiredVersion'] = $version }
        Invoke-WithRetry -Description 'Install-PackageProvider NuGet' -Attempts 3 -ScriptBlock {
            Install-PackageProvider @options | Out-Null
        }
    }

# PowerShell modules, machine-wide (AllUsers) from the PowerShell Gallery.
Set-PSRepository -Name PSGallery -InstallationPolicy Trusted
foreach ($key in @($Versions.Keys | Where-Object { $_ -like 'psmodule:*' })) {
    Install-ModuleComponent -Key $key -Wanted $Versions[$key]
}

# Azure CLI extensions, in one machine-wide folder that every account's `az` finds.
New-Item -ItemType Directory -Force -Path $AzExtensionDir | Out-Null
[Environment]::SetEnvironmentVariable('AZURE_EXTENSION_DIR', $AzExtensionDir, 'Machine')
foreach ($key in @($Versions.Keys | Where-Object { $_ -like 'azext:*' })) {
    Install-AzExtensionComponent -Key $key -Wanted $Versions[$key]
}

# --- Clean up: keep the image small -------------------------------------------------------------
Invoke-Step -Name 'cleanup' -Version 'package-caches' -ScriptBlock {
    $null = Get-NativeOutput -FilePath choco -ArgumentList @('cache', 'remove', '--yes')
    $caches = @(
        (Join-Path $env:TEMP 'chocolatey'),
        (Join-Path $env:ProgramData 'chocolatey\lib-bad'),
        $WorkDir
    )
    foreach ($cache in $caches) {
        Remove-Item -LiteralPath $cache -Recurse -Force -ErrorAction SilentlyContinue
    }
}
Write-Host "[aib] Initialize-WindowsSoftware.ps1 finished; manifest: $ManifestPath"
