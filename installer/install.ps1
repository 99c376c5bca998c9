# VMB Score installer for Windows (PowerShell 5.1+): the engine venv and, on request, the
# DaVinci Resolve, REAPER and Blender plugins. The same steps and flags as install.sh:
#   .\installer\install.ps1                 engine (pinned packages into .venv)
#   .\installer\install.ps1 -Dev            the same plus the test tools
#   .\installer\install.ps1 -Hosts          engine, then the host plugins
#   .\installer\install.ps1 -HostsOnly      only the host plugins (no venv)
#   .\installer\install.ps1 -HostDir DIR    hosts' files under DIR\resolve and DIR\reaper
#   .\installer\install.ps1 -Uninstall      remove exactly the plugin files it installed
# Not run in CI (no Windows machine there): kept deliberately plain.
[CmdletBinding()]
param(
    [switch]$Dev,
    [switch]$Hosts,
    [switch]$HostsOnly,
    [string]$HostDir = "",
    [switch]$Uninstall
)
$ErrorActionPreference = "Stop"

$Root = (Resolve-Path (Join-Path $PSScriptRoot "..")).Path
$Venv = if ($env:VMB_VENV) { $env:VMB_VENV } else { Join-Path $Root ".venv" }
$Python = if ($env:PYTHON) { $env:PYTHON } else { "python" }

function Say([string]$Text) { Write-Host "[vmb install] $Text" }

# --- where things go -------------------------------------------------------------------------
function Get-VmbHome {
    if ($env:VMB_HOME) { return $env:VMB_HOME }
    return (Join-Path $env:APPDATA "VMB Score")
}

function Get-HostPaths {
    if ($HostDir) {
        New-Item -ItemType Directory -Force -Path $HostDir | Out-Null
        $base = (Resolve-Path $HostDir).Path
        $resolve = Join-Path $base "resolve\Fusion\Scripts\Utility"
        $reaper = Join-Path $base "reaper"
        $manifest = Join-Path $base "vmb-score-plugins.manifest"
    } else {
        $resolve = Join-Path $env:APPDATA "Blackmagic Design\DaVinci Resolve\Support\Fusion\Scripts\Utility"
        $reaper = Join-Path $env:APPDATA "REAPER"
        $manifest = Join-Path (Get-VmbHome) "installed-plugins.manifest"
    }
    return @{
        ResolveScripts = $resolve
        ResolveLib = Join-Path $resolve "vmb_score_lib"
        ReaperScripts = Join-Path $reaper "Scripts\VMB Score"
        ReaperEffects = Join-Path $reaper "Effects\VMB Score"
        ReaperKb = Join-Path $reaper "reaper-kb.ini"
        Manifest = $manifest
    }
}

# --- manifest helpers --------------------------------------------------------------------------
$script:Entries = New-Object System.Collections.Generic.List[string]
function Add-Entry([string]$Kind, [string]$Value) { $script:Entries.Add("$Kind`t$Value") }

function Ensure-Dir([string]$Dir) {
    $missing = @()
    $d = $Dir
    while ($d -and -not (Test-Path -LiteralPath $d)) { $missing += $d; $d = Split-Path -Parent $d }
    [array]::Reverse($missing)
    foreach ($m in $missing) {
        New-Item -ItemType Directory -Path $m | Out-Null
        Add-Entry "dir" $m
    }
}

function Put-File([string]$Src, [string]$Dest) {
    Ensure-Dir (Split-Path -Parent $Dest)
    Copy-Item -LiteralPath $Src -Destination $Dest -Force
    Add-Entry "file" $Dest
}

function Write-PluginConfig([string]$Dest) {
    $vmb = Join-Path $Venv "Scripts\vmb.exe"
    $config = [ordered]@{
        vmb = if (Test-Path -LiteralPath $vmb) { $vmb } else { $null }
        home = if ($env:VMB_HOME) { $env:VMB_HOME } else { $null }
        installed_from = $Root
    }
    Ensure-Dir (Split-Path -Parent $Dest)
    $config | ConvertTo-Json | Set-Content -LiteralPath $Dest -Encoding UTF8
    Add-Entry "file" $Dest
}

function Register-Action([hashtable]$P, [string]$Title, [string]$Script) {
    if ((Test-Path -LiteralPath $P.ReaperKb) -and
        (Select-String -LiteralPath $P.ReaperKb -SimpleMatch -Pattern $Script -Quiet)) {
        return  # already registered (de-duplicated by path)
    }
    if (-not (Test-Path -LiteralPath $P.ReaperKb)) {
        Ensure-Dir (Split-Path -Parent $P.ReaperKb)
        New-Item -ItemType File -Path $P.ReaperKb | Out-Null
        Add-Entry "created_kb" $P.ReaperKb
    }
    $sha = [System.Security.Cryptography.SHA1]::Create()
    $hash = ($sha.ComputeHash([Text.Encoding]::UTF8.GetBytes($Script)) |
        ForEach-Object { $_.ToString("x2") }) -join ""
    $line = "SCR 4 0 RS$hash `"Custom: $Title`" `"$Script`""
    Add-Content -LiteralPath $P.ReaperKb -Value $line
    Add-Entry "kb" $line
}

function Uninstall-Hosts([switch]$Quiet) {
    $P = Get-HostPaths
    if (-not (Test-Path -LiteralPath $P.Manifest)) {
        if (-not $Quiet) { Say "no host plugins installed here (no $($P.Manifest))" }
        return
    }
    $dirs = @(); $kbs = @()
    foreach ($entry in Get-Content -LiteralPath $P.Manifest) {
        $kind, $value = $entry -split "`t", 2
        switch ($kind) {
            "file" { Remove-Item -LiteralPath $value -Force -ErrorAction SilentlyContinue }
            "dir" { $dirs += $value }
            "created_kb" { $kbs += $value }
            "kb" {
                if (Test-Path -LiteralPath $P.ReaperKb) {
                    $keep = Get-Content -LiteralPath $P.ReaperKb | Where-Object { $_ -ne $value }
                    Set-Content -LiteralPath $P.ReaperKb -Value $keep
                }
            }
        }
    }
    foreach ($kb in $kbs) {
        if ((Test-Path -LiteralPath $kb) -and -not (Get-Content -LiteralPath $kb)) {
            Remove-Item -LiteralPath $kb -Force
        }
    }
    [array]::Reverse($dirs)
    foreach ($d in $dirs) {  # only empty folders: never a user's file
        if ((Test-Path -LiteralPath $d) -and -not (Get-ChildItem -LiteralPath $d -Force)) {
            Remove-Item -LiteralPath $d -Force
        }
    }
    Remove-Item -LiteralPath $P.Manifest -Force
    if (-not $Quiet) { Say "removed the host plugins listed in $($P.Manifest)" }
}

function Install-Hosts {
    $P = Get-HostPaths
    if (Test-Path -LiteralPath $P.Manifest) { Uninstall-Hosts -Quiet }
    $script:Entries.Clear()
    $src = Join-Path $Root "plugins"

    Put-File (Join-Path $src "davinci\VMB Score.py") (Join-Path $P.ResolveScripts "VMB Score.py")
    Put-File (Join-Path $src "davinci\VMB Score whole timeline.py") (Join-Path $P.ResolveScripts "VMB Score whole timeline.py")
    Put-File (Join-Path $src "davinci\vmb_resolve.py") (Join-Path $P.ResolveLib "vmb_resolve.py")
    Put-File (Join-Path $src "common\vmb_client.py") (Join-Path $P.ResolveLib "vmb_client.py")
    Write-PluginConfig (Join-Path $P.ResolveLib "vmb_plugin.json")

    foreach ($name in @("VMB Generate score for selection.py", "VMB Score whole project.py",
                        "VMB Insert controls.py", "vmb_reaper.py")) {
        Put-File (Join-Path $src "reaper\$name") (Join-Path $P.ReaperScripts $name)
    }
    Put-File (Join-Path $src "common\vmb_client.py") (Join-Path $P.ReaperScripts "vmb_client.py")
    Write-PluginConfig (Join-Path $P.ReaperScripts "vmb_plugin.json")
    Put-File (Join-Path $src "reaper\VMB Controls.jsfx") (Join-Path $P.ReaperEffects "VMB Controls.jsfx")
    Register-Action $P "VMB: Generate score for selection" (Join-Path $P.ReaperScripts "VMB Generate score for selection.py")
    Register-Action $P "VMB: Score whole project" (Join-Path $P.ReaperScripts "VMB Score whole project.py")
    Register-Action $P "VMB: Insert controls" (Join-Path $P.ReaperScripts "VMB Insert controls.py")
    Install-Blender

    Ensure-Dir (Split-Path -Parent $P.Manifest)
    Set-Content -LiteralPath $P.Manifest -Value $script:Entries
    Say "DaVinci Resolve: Workspace > Scripts > 'VMB Score' ($($P.ResolveScripts))"
    Say "REAPER: actions 'VMB: ...' ($($P.ReaperScripts)); restart REAPER to load them"
    Say "  needs Preferences > Plug-ins > ReaScript > Enable Python; knobs: 'VMB: Insert controls'"
}

# --- Blender extension (files from plugins\blender\files.txt) -------------------------------
function Get-BlenderExtDirs {
    if ($env:BLENDER_USER_EXTENSIONS) {
        return @(Join-Path $env:BLENDER_USER_EXTENSIONS "user_default\vmb_score")
    }
    if ($HostDir) { return @(Join-Path (Resolve-Path $HostDir).Path "blender\extensions\user_default\vmb_score") }
    $base = Join-Path $env:APPDATA "Blender Foundation\Blender"
    if (-not (Test-Path -LiteralPath $base)) { return @() }
    $dirs = @()
    foreach ($d in Get-ChildItem -LiteralPath $base -Directory) {
        $v = $null
        if ([version]::TryParse($d.Name, [ref]$v) -and $v -ge [version]"4.2") {
            $dirs += (Join-Path $d.FullName "extensions\user_default\vmb_score")
        }
    }
    return $dirs
}

function Install-Blender {
    $src = Join-Path $Root "plugins"
    $files = Get-Content -LiteralPath (Join-Path $src "blender\files.txt") |
        Where-Object { $_.Trim() -and -not $_.StartsWith("#") }
    $n = 0
    foreach ($dest in Get-BlenderExtDirs) {
        foreach ($rel in $files) {
            Put-File (Join-Path $src $rel) (Join-Path $dest (Split-Path -Leaf $rel))
        }
        Write-PluginConfig (Join-Path $dest "vmb_plugin.json")
        Say "Blender: extension in $dest"
        $n++
    }
    $zipDir = if ($HostDir) { Join-Path (Resolve-Path $HostDir).Path "blender" } else { Join-Path (Get-VmbHome) "blender" }
    $zip = Join-Path $zipDir "vmb_score.zip"
    Ensure-Dir $zipDir
    $paths = $files | ForEach-Object { Join-Path $src $_ }
    Compress-Archive -LiteralPath $paths -DestinationPath $zip -Force
    Add-Entry "file" $zip
    if ($n -gt 0) {
        Say "  enable it in Blender: Edit > Preferences > Add-ons > 'VMB Score' (restart Blender first)"
    } else {
        Say "Blender: no Blender 4.2+ user folder found. In Blender: Edit > Preferences >"
        Say "  Get Extensions > (menu at the top right) > Install from Disk... > $zip"
    }
    Say "  then: Video Sequencer > sidebar (N) > 'VMB Score' tab"
}

# --- engine ------------------------------------------------------------------------------------
function Install-Engine {
    foreach ($tool in @("fluidsynth", "ffmpeg")) {
        if (-not (Get-Command $tool -ErrorAction SilentlyContinue)) {
            Say "missing ${tool}: install it (e.g. winget install ${tool}) and a General MIDI soundfont"
        }
    }
    $py = Join-Path $Venv "Scripts\python.exe"
    if (-not (Test-Path -LiteralPath $py)) {
        Say "creating $Venv"
        & $Python -m venv $Venv
    }
    $torch = "torch==2.13.0"
    $pip = @("-m", "pip", "--disable-pip-version-check", "-q", "install")
    Say "installing $torch"
    & $py @pip $torch
    Say "installing engine requirements"
    & $py @pip $torch -r (Join-Path $Root "requirements\engine.txt") -r (Join-Path $Root "requirements\full.txt")
    & $py @pip --no-deps -r (Join-Path $Root "requirements\nodeps.txt")
    & $py @pip --no-deps -e $Root
    if ($Dev) {
        Say "installing test tools"
        & $py @pip $torch -r (Join-Path $Root "requirements\dev.txt")
    }
    Say "ready: $(Join-Path $Venv 'Scripts\vmb.exe')"
}

if ($Uninstall) { Uninstall-Hosts; exit 0 }
if ($HostsOnly) { Install-Hosts; exit 0 }
Install-Engine
if ($Hosts) { Install-Hosts }
