#!/usr/bin/env bash
# The prepared GPU check: one call on a lent GPU machine (no network, its own Python 3.12,
# torch, transformers) installs the pure-Python wheels that tests/gpu/fetch_wheels.sh put in
# .whl/, runs the `gpu` tests and `vmb bench generate --size full` (30 s cue, 100 steps,
# CFG 7, bf16, without and with offload) and writes gpu-check.json to $OUT. See docs/GPU.md.
#   tests/gpu/check.sh                 on a GPU (exit 2 without CUDA)
#   tests/gpu/check.sh --dry-run       the same steps on the CPU with tiny weights (CI)
#   tests/gpu/check.sh --out DIR       report folder (default: $OUT, else out/gpu-check)
#   tests/gpu/check.sh --wheels DIR    install the wheels of DIR (default .whl) even in --dry-run
# Environment: PYTHON (default .venv/bin/python, else python3), VMB_GPU_SITE (wheel target).
# Exit 0 when every test passed and every target met (or was not judged), 1 otherwise.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PYTHON:-}"  # the project's venv where there is one (not on a lent GPU machine)
[ -n "$PY" ] || { [ -x "$ROOT/.venv/bin/python" ] && PY="$ROOT/.venv/bin/python"; } || PY=python3
DRY=()
REPORT_DIR="${OUT:-$ROOT/out/gpu-check}"
EXTRA=()
WHEELS="$ROOT/.whl"
FORCE_WHEELS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=(--dry-run) ;;
    --out) [ $# -ge 2 ] || { echo "check.sh: --out needs a folder" >&2; exit 2; }
      REPORT_DIR="$2"; shift ;;
    --skip-bench) EXTRA+=(--skip-bench) ;;
    --wheels) [ $# -ge 2 ] || { echo "check.sh: --wheels needs a folder" >&2; exit 2; }
      WHEELS="$2"; FORCE_WHEELS=1; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "check.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done

say() { printf '[gpu check] %s\n' "$*"; }

if { ((${#DRY[@]} == 0)) || ((FORCE_WHEELS)); } && compgen -G "$WHEELS/*.whl" >/dev/null; then
  SITE="${VMB_GPU_SITE:-/tmp/vmb-gpu-site}"
  say "installing $(ls "$WHEELS"/*.whl | wc -l) carried wheels into $SITE (no index, no deps)"
  "$PY" -m pip install -q --disable-pip-version-check --no-index --find-links "$WHEELS" \
    --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,memory.used,memory.total \
  --format=csv,noheader 2>/dev/null | sed 's/^/[gpu check] /' || true
say "python: $("$PY" -c 'import sys; print(sys.version.split()[0])'), report in $REPORT_DIR"
exec "$PY" "$ROOT/tests/gpu/check.py" "${DRY[@]}" "${EXTRA[@]}" --out "$REPORT_DIR"
