# VMB Score installer for Windows (PowerShell 5.1+): the engine venv and, on request, the
# DaVinci Resolve, REAPER and Blender plugins. The same steps and flags as install.sh:
#   .\installer\install.ps1                 engine (pinned packages into .venv)
#   .\installer\install.ps1 -Dev            the same plus the test tools
#   .\installer\install.ps1 -Hosts          engine, then the host plugins
#   .\installer\install.ps1 -HostsOnly      only the host plugins (no venv)
#   .\installer\install.ps1 -HostDir DIR    hosts' files under DIR\resolve and DIR\reaper
#   .\installer\install.ps1 -Uninstall      remove exactly the plugin files it installed
#   .\installer\install.ps1 -Gpu cuda       CUDA builds of torch and onnxruntime (default auto:
#                                           CUDA where nvidia-smi reports a GPU); -Gpu cpu
#   .\installer\install.ps1 -PrintPlan      say which builds and pip commands, install nothing
# The choice mirrors installer/gpu.sh (unit-tested there); env VMB_TORCH_INDEX_URL overrides
# the CUDA torch index, VMB_GPU the default of -Gpu.
# Not run in CI (no Windows machine there): kept deliberately plain.
[CmdletBinding()]
param(
    [switch]$Dev,
    [switch]$Hosts,
    [switch]$HostsOnly,
    [string]$HostDir = "",
    [switch]$Uninstall,
    [string]$Gpu = "",
    [switch]$PrintPlan
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
        $fusion = Join-Path $base "resolve\Fusion"
        $reaper = Join-Path $base "reaper"
        $manifest = Join-Path $base "vmb-score-plugins.manifest"
    } else {
        $fusion = Join-Path $env:APPDATA "Blackmagic Design\DaVinci Resolve\Support\Fusion"
        $reaper = Join-Path $env:APPDATA "REAPER"
        $manifest = Join-Path (Get-VmbHome) "installed-plugins.manifest"
    }
    return @{
        ResolveScripts = Join-Path $fusion "Scripts\Utility"
        ResolveLib = Join-Path $fusion "vmb_score_lib"  # outside Scripts: not a menu entry
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
    if (Select-String -LiteralPath $P.Manifest -Pattern "^kb`t" -Quiet) { Assert-ReaperClosed }
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

function Get-HostRoot([hashtable]$P, [string]$HostName, [string]$Key) {
    switch ("${HostName}:$Key") {
        "davinci:MENU" { return $P.ResolveScripts }
        "davinci:LIB" { return $P.ResolveLib }
        "reaper:SCRIPTS" { return $P.ReaperScripts }
        "reaper:EFFECTS" { return $P.ReaperEffects }
        "blender:EXT" { return $script:BlenderExt }  # set per Blender version by Install-Blender
    }
    throw "plugins\$HostName\files.txt: unknown folder '$Key'"
}

function Install-Files([hashtable]$P, [string]$HostName) {
    # what plugins\<host>\files.txt lists (the same lists install.sh reads)
    $src = Join-Path $Root "plugins"
    foreach ($line in Get-Content -LiteralPath (Join-Path $src "$HostName\files.txt")) {
        if (-not $line -or $line.StartsWith("#")) { continue }
        $cols = $line -split "`t"
        $key, $rel = $cols[1] -split "/", 2
        $target = Join-Path (Get-HostRoot $P $HostName $key) ($rel -replace "/", "\")
        if ($cols[0] -eq "@config") { Write-PluginConfig $target }
        else { Put-File (Join-Path $src ($cols[0] -replace "/", "\")) $target }
        if ($cols.Count -ge 3 -and $cols[2]) { Register-Action $P $cols[2] $target }
    }
}

function Assert-ReaperClosed {
    # REAPER rewrites reaper-kb.ini when it quits: entries written meanwhile would be lost
    $running = Get-Process -Name "reaper" -ErrorAction SilentlyContinue
    if ($running) {
        Write-Error ("REAPER is running (pid $($running.Id -join ', ')). It rewrites reaper-kb.ini " +
            "when it quits, which would drop the VMB Score actions. Quit REAPER, then run this again.")
        exit 1
    }
}

function Install-Hosts {
    $P = Get-HostPaths
    Assert-ReaperClosed
    if (Test-Path -LiteralPath $P.Manifest) { Uninstall-Hosts -Quiet }
    $script:Entries.Clear()
    Install-Files $P "davinci"
    Install-Files $P "reaper"
    Install-Blender $P

    Ensure-Dir (Split-Path -Parent $P.Manifest)
    Set-Content -LiteralPath $P.Manifest -Value $script:Entries
    Say "DaVinci Resolve: Workspace > Scripts > Utility > 'VMB Score' ($($P.ResolveScripts))"
    Say "REAPER 6.0+: Actions > Show action list > 'Custom: VMB: ...' ($($P.ReaperScripts))"
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

function Install-Blender([hashtable]$P) {
    $src = Join-Path $Root "plugins"
    $n = 0
    foreach ($dest in Get-BlenderExtDirs) {
        $script:BlenderExt = $dest  # EXT in plugins\blender\files.txt (Get-HostRoot)
        Install-Files $P "blender"
        Say "Blender: extension in $dest"
        $n++
    }
    # the zip for "Install from Disk": the same files, at the zip's root
    $zipDir = if ($HostDir) { Join-Path (Resolve-Path $HostDir).Path "blender" } else { Join-Path (Get-VmbHome) "blender" }
    $zip = Join-Path $zipDir "vmb_score.zip"
    Ensure-Dir $zipDir
    $paths = Get-Content -LiteralPath (Join-Path $src "blender\files.txt") |
        Where-Object { $_ -and -not $_.StartsWith("#") -and -not $_.StartsWith("@config") } |
        ForEach-Object { Join-Path $src ((($_ -split "`t")[0]) -replace "/", "\") }
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

# --- which torch / onnxruntime builds (the same rules as installer/gpu.sh) -------------------
$TorchVersion = "2.13.0"
$CudaIndexDefault = "https://download.pytorch.org/whl/cu130"
$CudaMinMajor = 13  # torch cu130 and onnxruntime-gpu 1.31 need a driver that runs CUDA 13
$OrtGpuSpec = "onnxruntime-gpu==1.31.1"

function Get-NvidiaGpu {
    # Windows PowerShell turns a native command's stderr into errors under "Stop"
    $ErrorActionPreference = "Continue"
    $smi = Get-Command nvidia-smi -ErrorAction SilentlyContinue
    if (-not $smi) { return @{ Ok = $false; Reason = "no nvidia-smi on PATH (no NVIDIA driver)" } }
    $out = & $smi.Source --query-gpu=name "--format=csv,noheader" 2>&1
    if ($LASTEXITCODE -ne 0) {
        $first = ($out | Select-Object -First 1)
        return @{ Ok = $false; Reason = "nvidia-smi failed (exit $LASTEXITCODE): $first" }
    }
    $names = @($out | ForEach-Object { "$_".Trim() } | Where-Object { $_ })
    if (-not $names) { return @{ Ok = $false; Reason = "nvidia-smi lists no GPU" } }
    $name = $names[0]
    if ($names.Count -gt 1) { $name = "$name (+$($names.Count - 1) more)" }
    $cuda = ""
    $banner = (& $smi.Source 2>$null) -join "`n"
    if ($banner -match "CUDA Version: *([0-9]+\.[0-9]+)") { $cuda = $Matches[1] }
    return @{ Ok = $true; Name = $name; Cuda = $cuda }
}

function Get-GpuPlan([string]$Request) {
    $plan = @{ Kind = "cpu"; TorchSpec = "torch==$TorchVersion"; IndexUrl = "";
               Ort = "onnxruntime"; OrtOther = "onnxruntime-gpu"; Reason = "" }
    if ($Request -notin @("auto", "cuda", "cpu")) {
        throw "-Gpu must be auto, cuda or cpu, not '$Request'"
    }
    if ($Request -eq "cpu") { $plan.Reason = "-Gpu cpu"; return $plan }
    $gpu = Get-NvidiaGpu
    if ($Request -eq "auto") {
        if (-not $gpu.Ok) { $plan.Reason = "$($gpu.Reason): CPU build"; return $plan }
        if ($gpu.Cuda -and [int]($gpu.Cuda.Split(".")[0]) -lt $CudaMinMajor) {
            $plan.Reason = "$($gpu.Name) found, but its driver runs CUDA $($gpu.Cuda) and the " +
                "CUDA build needs $CudaMinMajor.0: CPU build (update the NVIDIA driver, or " +
                "force it with -Gpu cuda and VMB_TORCH_INDEX_URL)"
            return $plan
        }
        $plan.Reason = "nvidia-smi found $($gpu.Name)"
        if ($gpu.Cuda) { $plan.Reason += " (driver runs CUDA $($gpu.Cuda))" }
    } elseif ($gpu.Ok) {
        $plan.Reason = "-Gpu cuda ($($gpu.Name))"
    } else {
        $plan.Reason = "-Gpu cuda, although $($gpu.Reason)"
    }
    $plan.Kind = "cuda"
    $plan.IndexUrl = if ($env:VMB_TORCH_INDEX_URL) { $env:VMB_TORCH_INDEX_URL } else { $CudaIndexDefault }
    $tag = ($plan.IndexUrl.TrimEnd("/") -split "/")[-1]
    if ($tag -match "^cu[0-9]+$") { $plan.TorchSpec = "torch==$TorchVersion+$tag" }
    $plan.Ort = "onnxruntime-gpu"; $plan.OrtOther = "onnxruntime"
    return $plan
}

# --- engine ------------------------------------------------------------------------------------
function Invoke-Pip([string]$Py, [string[]]$PipArgs) {
    if ($PrintPlan) { Write-Host ("pip " + ($PipArgs -join " ")); return }
    & $Py -m pip --disable-pip-version-check -q @PipArgs
    if ($LASTEXITCODE -ne 0) { throw "pip $($PipArgs -join ' ') failed (exit $LASTEXITCODE)" }
}

function Test-PipHas([string]$Py, [string]$Name) {
    if (-not (Test-Path -LiteralPath $Py)) { return $false }
    $ErrorActionPreference = "Continue"  # pip's "not found" goes to stderr
    & $Py -m pip --disable-pip-version-check -q show $Name *> $null
    return ($LASTEXITCODE -eq 0)
}

function Install-Engine {
    $request = if ($Gpu) { $Gpu } elseif ($env:VMB_GPU) { $env:VMB_GPU } else { "auto" }
    $plan = Get-GpuPlan $request
    Say "torch build: $($plan.Kind) ($($plan.Reason))"
    Say "onnxruntime build: $($plan.Ort) (never beside $($plan.OrtOther): they share one folder)"
    foreach ($tool in @("fluidsynth", "ffmpeg")) {
        if (-not (Get-Command $tool -ErrorAction SilentlyContinue)) {
            Say "missing ${tool}: install it (e.g. winget install ${tool}) and a General MIDI soundfont"
        }
    }
    $py = Join-Path $Venv "Scripts\python.exe"
    if (-not $PrintPlan -and -not (Test-Path -LiteralPath $py)) {
        Say "creating $Venv"
        & $Python -m venv $Venv
    }
    $torch = "torch==$TorchVersion"
    $full = Join-Path $Root "requirements\full.txt"
    Say "installing $($plan.TorchSpec)"
    if ($plan.Kind -eq "cuda") {
        Invoke-Pip $py @("install", $plan.TorchSpec, "--index-url", $plan.IndexUrl)
        $full = Join-Path $Venv ".vmb-requirements-cuda.txt"
        if (-not $PrintPlan) {
            $lines = @(Get-Content (Join-Path $Root "requirements\full.txt") |
                Where-Object { $_ -notmatch "^onnxruntime==" }) + $OrtGpuSpec
            Set-Content -LiteralPath $full -Value $lines
        }
    } else {
        Invoke-Pip $py @("install", $torch)
    }
    if (Test-PipHas $py $plan.OrtOther) {  # one folder for both: remove both, install one afresh
        Say "replacing $($plan.OrtOther) with $($plan.Ort)"
        Invoke-Pip $py @("uninstall", "-y", $plan.OrtOther, $plan.Ort)
    }
    Say "installing engine requirements"
    Invoke-Pip $py @("install", $torch, "-r", (Join-Path $Root "requirements\engine.txt"), "-r", $full)
    Invoke-Pip $py @("install", "--no-deps", "-r", (Join-Path $Root "requirements\nodeps.txt"))
    Invoke-Pip $py @("install", "--no-deps", "-e", $Root)
    if ($Dev) {
        Say "installing test tools"
        Invoke-Pip $py @("install", $torch, "-r", (Join-Path $Root "requirements\dev.txt"))
    }
    if ($PrintPlan) { return }
    Say "ready: $(Join-Path $Venv 'Scripts\vmb.exe')"
}

if ($Uninstall) { Uninstall-Hosts; exit 0 }
if ($HostsOnly) { Install-Hosts; exit 0 }
Install-Engine
if ($PrintPlan) { exit 0 }
if ($Hosts) { Install-Hosts }
