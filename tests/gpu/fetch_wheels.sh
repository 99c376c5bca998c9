#!/usr/bin/env bash
# Download, on a machine with the package index, the pure-Python wheels (and the few small
# binary ones) that the lent GPU machine lacks, into .whl/ (git-ignored, carried with the
# working tree: keep it under 64 MiB). tests/gpu/check.sh installs them there with
#   pip install --no-index --find-links .whl --no-deps --target ...
# That machine has Python 3.12 with torch, transformers, numpy, scipy, einops, torchdiffeq,
# pandas, h5py, scikit-learn, numba, pytest (see docs/GPU.md); not what is fetched here.
#   tests/gpu/fetch_wheels.sh [--python-version 3.12] [--dest .whl]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYVER="3.12"
DEST="$ROOT/.whl"
PY="${PYTHON:-python3}"
while [ $# -gt 0 ]; do
  case "$1" in
    --python-version) PYVER="$2"; shift ;;
    --dest) DEST="$2"; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "fetch_wheels.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
LIMIT_BYTES=$((60 * 1024 * 1024))  # the working tree (about 2 MB) travels too

# pin_of NAME: the exact pin from requirements/*.txt (one source of versions)
pin_of() {
  local line
  line="$(grep -hiE "^$1==" "$ROOT"/requirements/{engine,full,nodeps}.txt | head -n 1)"
  [ -n "$line" ] || { echo "fetch_wheels.sh: no pin for $1 in requirements/" >&2; exit 1; }
  printf '%s\n' "${line%%[[:space:]]*}"
}

# the generator's path: stable-audio-tools (--no-deps) and its real needs; laion-clap and its
# audio stack for CLAP checks
PINNED=(stable-audio-tools k-diffusion laion-clap einops-exts alias-free-torch torchsde
        librosa torchlibrosa ftfy braceexpand webdataset wget soundfile)
# their own needs the GPU image does not hold (versions as the project's venv runs them)
TRANSITIVE=(trampoline==0.1.2 cffi==2.1.1 pycparser==3.12 soxr==1.1.0 audioread==3.1.0
            decorator==5.3.1 pooch==1.9.0 platformdirs==4.14.9 wcwidth==0.9.4)
SPECS=()
for name in "${PINNED[@]}"; do SPECS+=("$(pin_of "$name")"); done
SPECS+=("${TRANSITIVE[@]}")

mkdir -p "$DEST"
PLATFORMS=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 \
           manylinux2014_x86_64 manylinux1_x86_64 any; do
  PLATFORMS+=(--platform "$tag")
done
echo "[fetch wheels] ${#SPECS[@]} packages for CPython $PYVER into $DEST"
for spec in "${SPECS[@]}"; do
  if ! "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      --python-version "$PYVER" --implementation cp "${PLATFORMS[@]}" -d "$DEST" "$spec" \
      2>/dev/null; then
    # published as a source archive only (wget 3.2): build the wheel here; it must be pure
    "$PY" -m pip wheel -q --disable-pip-version-check --no-deps -w "$DEST" "$spec"
    name="$(printf '%s' "${spec%%==*}" | tr 'A-Z-' 'a-z_')"
    if ! ls "$DEST" | tr 'A-Z' 'a-z' | grep -q "^${name}-.*-none-any\.whl$"; then
      echo "fetch_wheels.sh: $spec has no wheel for CPython $PYVER and is not pure Python" >&2
      exit 1
    fi
  fi
done
# one version of each: two would stop the install there
dupes="$(ls "$DEST"/*.whl | xargs -n1 basename | cut -d- -f1 | tr 'A-Z-' 'a-z_' | sort | uniq -d)"
if [ -n "$dupes" ]; then
  echo "fetch_wheels.sh: several versions of: $dupes (empty $DEST and run again)" >&2
  exit 1
fi
total="$(du -cb "$DEST"/*.whl | tail -n 1 | cut -f1)"
echo "[fetch wheels] $(ls "$DEST"/*.whl | wc -l) wheels, $((total / 1024)) KiB"
if ((total > LIMIT_BYTES)); then
  echo "fetch_wheels.sh: $((total / 1048576)) MiB is over the 60 MiB that may travel" >&2
  exit 1
fi
