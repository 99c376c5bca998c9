# shellcheck shell=bash
# Which torch and onnxruntime builds the installer puts in the venv. Sourced by install.sh;
# tests/installer/test_gpu_plan.py drives it with a fake nvidia-smi on PATH.
#
#   gpu_plan REQUEST [OS]     REQUEST: auto | cuda | cpu; OS: `uname -s` (default)
# sets:
#   GPU_KIND        cpu | cuda | mps
#   GPU_REASON      why, in words (the installer prints it)
#   TORCH_SPEC      the torch requirement of the first pip call (torch==2.13.0[+cuXYZ])
#   TORCH_INDEX_URL the PyTorch index for the CUDA build ("" = the default index)
#   ORT_PACKAGE     onnxruntime (CPU, and CoreML on macOS) or onnxruntime-gpu (CUDA)
#   ORT_OTHER       the one that must not be installed beside it (both own onnxruntime/)
# returns 2 (with GPU_REASON) for a request this machine cannot honour.
#
# Environment: VMB_TORCH_INDEX_URL overrides the CUDA index (its last path part, e.g. cu128,
# becomes the local version tag of the torch pin when it looks like one).

VMB_TORCH_VERSION="2.13.0"
VMB_TORCH_CUDA_INDEX_DEFAULT="https://download.pytorch.org/whl/cu130"
# torch's cu130 build and onnxruntime-gpu 1.31 both need a driver that runs CUDA 13.0.
VMB_CUDA_MIN_MAJOR=13
VMB_ORT_GPU_SPEC="onnxruntime-gpu==1.31.1"

# _nvidia_gpu: 0 with GPU_NAME and GPU_DRIVER_CUDA set when nvidia-smi reports a GPU, else 1
# with GPU_REASON saying what was seen.
_nvidia_gpu() {
  GPU_NAME="" GPU_DRIVER_CUDA=""
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    GPU_REASON="no nvidia-smi on PATH (no NVIDIA driver)"
    return 1
  fi
  local out rc=0 to=()
  command -v timeout >/dev/null 2>&1 && to=(timeout 20)  # a wedged driver can hang nvidia-smi
  out="$("${to[@]}" nvidia-smi --query-gpu=name --format=csv,noheader 2>&1)" || rc=$?
  if ((rc)); then
    GPU_REASON="nvidia-smi failed (exit $rc): $(printf '%s' "$out" | head -n 1)"
    return 1
  fi
  GPU_NAME="$(printf '%s\n' "$out" | sed -n '/[^[:space:]]/{p;q;}')"
  if [ -z "$GPU_NAME" ]; then
    GPU_REASON="nvidia-smi lists no GPU"
    return 1
  fi
  local count
  count="$(printf '%s\n' "$out" | grep -c '[^[:space:]]')" || true
  ((count > 1)) && GPU_NAME="$GPU_NAME (+$((count - 1)) more)"
  # The banner's "CUDA Version: 12.4" is the newest CUDA the driver runs.
  GPU_DRIVER_CUDA="$("${to[@]}" nvidia-smi 2>/dev/null |
    sed -n 's/.*CUDA Version: *\([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n 1)" || true
  return 0
}

_cuda_packages() {
  TORCH_INDEX_URL="${VMB_TORCH_INDEX_URL:-$VMB_TORCH_CUDA_INDEX_DEFAULT}"
  local tag="${TORCH_INDEX_URL%/}"
  tag="${tag##*/}"
  if [[ "$tag" =~ ^cu[0-9]+$ ]]; then
    # the local tag makes pip replace a CPU torch 2.13.0 already in the venv
    TORCH_SPEC="torch==$VMB_TORCH_VERSION+$tag"
  else
    TORCH_SPEC="torch==$VMB_TORCH_VERSION"
  fi
  ORT_PACKAGE="onnxruntime-gpu" ORT_OTHER="onnxruntime"
}

gpu_plan() {
  local request="${1:-auto}" os="${2:-$(uname -s)}"
  GPU_KIND="cpu" TORCH_SPEC="torch==$VMB_TORCH_VERSION" TORCH_INDEX_URL=""
  ORT_PACKAGE="onnxruntime" ORT_OTHER="onnxruntime-gpu" GPU_REASON=""
  case "$request" in
    auto | cuda | cpu) ;;
    *) GPU_REASON="--gpu must be auto, cuda or cpu, not '$request'"; return 2 ;;
  esac
  if [ "$os" = Darwin ]; then
    if [ "$request" = cuda ]; then
      GPU_REASON="--gpu cuda: macOS has no CUDA (the default build uses the Apple GPU via MPS)"
      return 2
    fi
    if [ "$request" = cpu ]; then
      GPU_REASON="--gpu cpu (macOS: the same default build, run on the CPU)"
    else
      GPU_KIND="mps"
      GPU_REASON="macOS: the default torch build, which runs on the Apple GPU (MPS) where present"
    fi
    return 0
  fi
  if [ "$request" = cpu ]; then
    GPU_REASON="--gpu cpu"
    return 0
  fi
  if [ "$request" = cuda ]; then
    _cuda_packages
    GPU_KIND="cuda"
    if _nvidia_gpu; then
      GPU_REASON="--gpu cuda ($GPU_NAME)"
    else
      GPU_REASON="--gpu cuda, although $GPU_REASON"
    fi
    return 0
  fi
  if ! _nvidia_gpu; then
    GPU_REASON="$GPU_REASON: CPU build"
    return 0
  fi
  if [ -n "$GPU_DRIVER_CUDA" ] && ((${GPU_DRIVER_CUDA%%.*} < VMB_CUDA_MIN_MAJOR)); then
    GPU_REASON="$GPU_NAME found, but its driver runs CUDA $GPU_DRIVER_CUDA and the CUDA build"
    GPU_REASON+=" needs $VMB_CUDA_MIN_MAJOR.0: CPU build (update the NVIDIA driver, or force"
    GPU_REASON+=" it with --gpu cuda and VMB_TORCH_INDEX_URL)"
    return 0
  fi
  _cuda_packages
  GPU_KIND="cuda"
  GPU_REASON="nvidia-smi found $GPU_NAME"
  [ -n "$GPU_DRIVER_CUDA" ] && GPU_REASON+=" (driver runs CUDA $GPU_DRIVER_CUDA)"
  return 0
}

# cuda_requirements FULL_TXT OUT: full.txt with onnxruntime replaced by onnxruntime-gpu.
cuda_requirements() {
  grep -v '^onnxruntime==' "$1" >"$2"
  printf '%s\n' "$VMB_ORT_GPU_SPEC" >>"$2"
}
