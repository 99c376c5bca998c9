#!/usr/bin/env bash
# VMB Score installer (Linux, macOS): engine venv with pinned packages + Debian packages,
# and on request the DaVinci Resolve and REAPER plugins.
#   ./installer/install.sh                 engine and the draft backend's system packages
#   ./installer/install.sh --dev           the same plus the test tools (and bpy in .venv-blender)
#   ./installer/install.sh --hosts         engine, then the host plugins
#   ./installer/install.sh --hosts-only    only the host plugins (no venv, no packages)
#   ./installer/install.sh --uninstall     remove exactly the host plugin files it installed
#   ./installer/install.sh --gpu cuda      the CUDA builds of torch and onnxruntime (default:
#                                          auto, CUDA where nvidia-smi reports a GPU)
#   ./installer/install.sh --print-plan    say which builds and pip commands, install nothing
# Idempotent: a second run on a set-up machine only checks (seconds).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VMB_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
DEV=0
SYSTEM=1
HOSTS=0
HOSTS_ONLY=0
UNINSTALL=0
HOST_DIR=""
GPU="${VMB_GPU:-auto}"
PRINT_PLAN=0

# shellcheck source=installer/gpu.sh
. "$ROOT/installer/gpu.sh"

usage() {
  cat <<USAGE
usage: install.sh [--dev] [--no-system] [--hosts | --hosts-only] [--host-dir DIR] [--uninstall]
  --dev           also install the test tools (pytest, hypothesis, ruff) and, for the
                  Blender test, bpy in its own venv (VMB_BLENDER_VENV, default $ROOT/.venv-blender)
  --no-system     do not install Debian packages (print what is missing instead)
  --hosts         after the engine, install the DaVinci Resolve, REAPER and Blender plugins
  --hosts-only    install only the host plugins (skips the venv and system packages)
  --host-dir DIR  put the hosts' files under DIR/resolve, DIR/reaper and DIR/blender instead of the hosts'
                  real resource folders (tests, portable installs)
  --uninstall     remove the host plugin files and REAPER action lines this script added
  --gpu WHICH     auto (default): CUDA builds where nvidia-smi reports an NVIDIA GPU whose
                  driver runs CUDA 13, else CPU; cuda: CUDA builds anyway; cpu: CPU builds.
                  macOS always gets the default build (Apple GPU via MPS where present)
  --print-plan    print the chosen builds and the pip commands, then stop (installs nothing)
environment: VMB_VENV (venv folder, default $ROOT/.venv), PYTHON (interpreter, default python3),
             VMB_HOME (engine home the plugins look in; default per OS),
             VMB_GPU (default for --gpu), VMB_TORCH_INDEX_URL (the CUDA torch index,
             default $VMB_TORCH_CUDA_INDEX_DEFAULT)
USAGE
}

while [ $# -gt 0 ]; do
  case "$1" in
    --dev) DEV=1 ;;
    --no-system) SYSTEM=0 ;;
    --hosts) HOSTS=1 ;;
    --hosts-only) HOSTS=1; HOSTS_ONLY=1 ;;
    --uninstall) UNINSTALL=1 ;;
    --print-plan) PRINT_PLAN=1 ;;
    --gpu)
      [ $# -ge 2 ] || { echo "install.sh: --gpu needs auto, cuda or cpu" >&2; exit 2; }
      GPU="$2"; shift ;;
    --gpu=*) GPU="${1#--gpu=}" ;;
    --host-dir)
      [ $# -ge 2 ] || { echo "install.sh: --host-dir needs a folder" >&2; exit 2; }
      HOST_DIR="$2"; shift ;;
    --host-dir=*) HOST_DIR="${1#--host-dir=}" ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

say() { printf '[vmb install] %s\n' "$*"; }

run_pip() { "${PIP[@]}" "$@"; }
print_pip() { printf 'pip %s\n' "$*"; }
ort_installed() {  # read-only, so --print-plan asks too where a venv exists
  [ -x "$VENV/bin/python" ] &&
    "$VENV/bin/python" -m pip --disable-pip-version-check -q show "$1" >/dev/null 2>&1
}

# pip_steps RUNNER: every pip call of an install, through run_pip or print_pip.
pip_steps() {
  local pip="$1" full="$ROOT/requirements/full.txt"
  # torch first and alone, pinned: a looser spec would pull a multi-GB CUDA build.
  local TORCH="torch==$VMB_TORCH_VERSION"
  say "installing $TORCH_SPEC"
  if [ "$GPU_KIND" = cuda ]; then
    "$pip" install "$TORCH_SPEC" --index-url "$TORCH_INDEX_URL"
    full="${VENV}/.vmb-requirements-cuda.txt"
    [ "$pip" = run_pip ] && cuda_requirements "$ROOT/requirements/full.txt" "$full"
  else
    "$pip" install "$TORCH"
  fi
  if ort_installed "$ORT_OTHER"; then
    # onnxruntime and onnxruntime-gpu share one folder: remove both, then install one afresh
    say "replacing $ORT_OTHER with $ORT_PACKAGE"
    "$pip" uninstall -y "$ORT_OTHER" "$ORT_PACKAGE"
  fi
  say "installing engine requirements"
  "$pip" install "$TORCH" -r "$ROOT/requirements/engine.txt" -r "$full"
  "$pip" install --no-deps -r "$ROOT/requirements/nodeps.txt"
  "$pip" install --no-deps -e "$ROOT"
  if ((DEV)); then
    say "installing test tools"
    "$pip" install "$TORCH" -r "$ROOT/requirements/dev.txt"
  fi
}

# shellcheck source=installer/hosts.sh
. "$ROOT/installer/hosts.sh"
if ((UNINSTALL)); then
  uninstall_hosts
  exit 0
fi
if ((HOSTS_ONLY)); then
  install_hosts
  exit 0
fi

# --- which torch / onnxruntime builds (installer/gpu.sh) ----------------------------------
if ! gpu_plan "$GPU"; then
  echo "install.sh: $GPU_REASON" >&2
  exit 2
fi
say "torch build: $GPU_KIND ($GPU_REASON)"
say "onnxruntime build: $ORT_PACKAGE (never beside $ORT_OTHER: they share one folder)"
if ((PRINT_PLAN)); then
  pip_steps print_pip
  exit 0
fi

# --- system packages (FluidSynth, ffmpeg, MIT soundfont, CC0 samples) --------------------
DEB_PACKAGES=(fluidsynth ffmpeg fluid-soundfont-gm sonic-pi-samples libsndfile1)
((DEV)) && DEB_PACKAGES+=(espeak-ng)  # speech for the ducking tests
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    cmd="apt-get install -y --no-install-recommends ${missing[*]}"
    if ((SYSTEM)) && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      say "installing Debian packages: ${missing[*]}"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $cmd -qq >/dev/null
    elif ((SYSTEM)) && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      say "installing Debian packages with sudo: ${missing[*]}"
      sudo DEBIAN_FRONTEND=noninteractive apt-get update -qq
      sudo DEBIAN_FRONTEND=noninteractive $cmd -qq >/dev/null
    else
      say "missing system packages; run:  sudo apt-get update && sudo $cmd"
    fi
  fi
elif [ "$(uname -s)" = Darwin ]; then
  command -v fluidsynth >/dev/null && command -v ffmpeg >/dev/null ||
    say "missing system packages; run:  brew install fluid-synth ffmpeg"
else
  command -v fluidsynth >/dev/null && command -v ffmpeg >/dev/null ||
    say "missing system packages: install fluidsynth, ffmpeg and a General MIDI soundfont with your package manager"
fi

# --- virtual environment ------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

# A stamp of everything pip would do; unchanged stamp = nothing to install.
stamp_src="$(cat "$ROOT"/requirements/{engine,full,nodeps}.txt "$ROOT/pyproject.toml"; ((DEV)) && cat "$ROOT/requirements/dev.txt"; echo "dev=$DEV")"
if [ "$GPU_KIND" = cuda ]; then  # CPU and MPS keep the stamp they always had
  stamp_src+="$(printf '\ngpu=cuda %s %s %s' "$TORCH_SPEC" "$TORCH_INDEX_URL" "$VMB_ORT_GPU_SPEC")"
fi
stamp="$(printf '%s' "$stamp_src" | sha256sum | cut -c1-16)"
stamp_file="$VENV/.vmb-install-$stamp"
if [ -f "$stamp_file" ] && "$VENV/bin/python" -c "import engine, bridge" 2>/dev/null; then
  say "environment up to date ($VENV)"
else
  pip_steps run_pip
  rm -f "$VENV"/.vmb-install-*
  touch "$stamp_file"
fi
say "ready: $VENV/bin/vmb"
if ((DEV)); then ensure_blender_venv; fi
if ((HOSTS)); then
  install_hosts
fi
