"""installer/gpu.sh and `install.sh --print-plan`: which torch / onnxruntime builds, decided
from a fake `nvidia-smi` on PATH (present, absent, failing, old driver) and --gpu overrides.
Nothing is installed: --print-plan prints the pip commands and stops."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "installer" / "install.sh"
GPU_SH = ROOT / "installer" / "gpu.sh"
CUDA_INDEX = "https://download.pytorch.org/whl/cu130"

# Exactly the pip calls install.sh made before it knew about GPUs (the CPU path must not move).
CPU_COMMANDS = [
    "pip install torch==2.13.0",
    f"pip install torch==2.13.0 -r {ROOT}/requirements/engine.txt -r {ROOT}/requirements/full.txt",
    f"pip install --no-deps -r {ROOT}/requirements/nodeps.txt",
    f"pip install --no-deps -e {ROOT}",
]

BANNER = """+-----------------------------------------------------------------------------+
| NVIDIA-SMI 580.159.03   Driver Version: 580.159.03   CUDA Version: {cuda}     |
|-------------------------------+----------------------+----------------------+
"""


def _script(path: Path, body: str) -> None:
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _fake_smi(bin_dir: Path, names: list[str], cuda: str = "13.0", fail: int = 0) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    calls = bin_dir / "calls.log"
    if fail:
        body = (
            f'echo "$*" >> "{calls}"\n'
            "echo \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA "
            'driver. Make sure that the latest NVIDIA driver is installed and running."\n'
            f"exit {fail}\n"
        )
    else:
        listing = "\n".join(names)
        body = (
            f'echo "$*" >> "{calls}"\n'
            'if [ "$1" = --query-gpu=name ]; then\n'
            f"  printf '%s\\n' '{listing}'\n"
            "  exit 0\n"
            "fi\n"
            f"cat <<'EOF'\n{BANNER.format(cuda=cuda)}EOF\n"
        )
    _script(bin_dir / "nvidia-smi", body)
    return calls


def _path_without_smi(extra: Path | None) -> str:
    """The test machine's PATH minus any real nvidia-smi, with the fake one first."""
    dirs = [
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if not (Path(d) / "nvidia-smi").exists()
    ]
    return os.pathsep.join(([str(extra)] if extra else []) + dirs)


def _plan(
    tmp_path: Path, *args: str, smi: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("VMB_GPU", "VMB_TORCH_INDEX_URL")}
    full_env.update(PATH=_path_without_smi(smi), VMB_VENV=str(tmp_path / "venv"), **(env or {}))
    done = subprocess.run(
        ["bash", str(INSTALL), "--print-plan", *args],
        capture_output=True, text=True, timeout=60, env=full_env, check=False,
    )  # fmt: skip
    assert not (tmp_path / "venv").exists(), "--print-plan must not create the venv"
    return done


def _pip_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("pip ")]


def _chosen(out: str) -> str:
    line = next(x for x in out.splitlines() if "torch build:" in x)
    return line.split("torch build: ", 1)[1]


def test_no_nvidia_smi_keeps_todays_cpu_commands(tmp_path: Path) -> None:
    done = _plan(tmp_path)
    assert done.returncode == 0, done.stderr
    assert _pip_lines(done.stdout) == CPU_COMMANDS
    assert _chosen(done.stdout).startswith("cpu (no nvidia-smi on PATH")
    assert "onnxruntime build: onnxruntime " in done.stdout


def test_dev_adds_only_the_test_tools_line(tmp_path: Path) -> None:
    done = _plan(tmp_path, "--dev")
    assert _pip_lines(done.stdout) == [
        *CPU_COMMANDS,
        f"pip install torch==2.13.0 -r {ROOT}/requirements/dev.txt",
    ]


def test_nvidia_gpu_gets_cuda_torch_and_onnxruntime_gpu(tmp_path: Path) -> None:
    calls = _fake_smi(tmp_path / "bin", ["NVIDIA H200"])
    done = _plan(tmp_path, smi=tmp_path / "bin")
    assert done.returncode == 0, done.stderr
    assert _chosen(done.stdout) == "cuda (nvidia-smi found NVIDIA H200 (driver runs CUDA 13.0))"
    pip = _pip_lines(done.stdout)
    assert pip[0] == f"pip install torch==2.13.0+cu130 --index-url {CUDA_INDEX}"
    cuda_reqs = tmp_path / "venv" / ".vmb-requirements-cuda.txt"
    assert pip[1] == (f"pip install torch==2.13.0 -r {ROOT}/requirements/engine.txt -r {cuda_reqs}")
    assert pip[2:] == CPU_COMMANDS[2:]
    assert "onnxruntime build: onnxruntime-gpu (never beside onnxruntime:" in done.stdout
    assert "--query-gpu=name --format=csv,noheader" in calls.read_text()


def test_two_gpus_are_named(tmp_path: Path) -> None:
    _fake_smi(tmp_path / "bin", ["NVIDIA RTX 4090", "NVIDIA RTX 4090"])
    done = _plan(tmp_path, smi=tmp_path / "bin")
    assert "NVIDIA RTX 4090 (+1 more)" in _chosen(done.stdout)


def test_failing_nvidia_smi_falls_back_to_cpu_and_says_why(tmp_path: Path) -> None:
    _fake_smi(tmp_path / "bin", [], fail=9)
    done = _plan(tmp_path, smi=tmp_path / "bin")
    assert done.returncode == 0, done.stderr
    assert _chosen(done.stdout).startswith(
        "cpu (nvidia-smi failed (exit 9): NVIDIA-SMI has failed because it couldn't communicate"
    )
    assert _pip_lines(done.stdout) == CPU_COMMANDS


def test_nvidia_smi_without_gpus_is_cpu(tmp_path: Path) -> None:
    _fake_smi(tmp_path / "bin", [""])
    done = _plan(tmp_path, smi=tmp_path / "bin")
    assert _chosen(done.stdout) == "cpu (nvidia-smi lists no GPU: CPU build)"
    assert _pip_lines(done.stdout) == CPU_COMMANDS


def test_driver_too_old_for_cuda_13_is_cpu(tmp_path: Path) -> None:
    _fake_smi(tmp_path / "bin", ["Tesla T4"], cuda="12.4")
    done = _plan(tmp_path, smi=tmp_path / "bin")
    chosen = _chosen(done.stdout)
    assert chosen.startswith("cpu (Tesla T4 found, but its driver runs CUDA 12.4")
    assert "--gpu cuda" in chosen
    assert _pip_lines(done.stdout) == CPU_COMMANDS


def test_gpu_cpu_override_ignores_the_gpu(tmp_path: Path) -> None:
    calls = _fake_smi(tmp_path / "bin", ["NVIDIA H200"])
    done = _plan(tmp_path, "--gpu", "cpu", smi=tmp_path / "bin")
    assert _chosen(done.stdout) == "cpu (--gpu cpu)"
    assert _pip_lines(done.stdout) == CPU_COMMANDS
    assert not calls.exists()  # not even asked


def test_gpu_cuda_override_without_driver_says_so(tmp_path: Path) -> None:
    done = _plan(tmp_path, "--gpu=cuda")
    assert done.returncode == 0, done.stderr
    no_driver = "no nvidia-smi on PATH (no NVIDIA driver)"
    assert _chosen(done.stdout) == f"cuda (--gpu cuda, although {no_driver})"
    assert _pip_lines(done.stdout)[0] == f"pip install torch==2.13.0+cu130 --index-url {CUDA_INDEX}"


def test_vmb_gpu_environment_is_the_default(tmp_path: Path) -> None:
    done = _plan(tmp_path, env={"VMB_GPU": "cuda"})
    assert _chosen(done.stdout).startswith("cuda (--gpu cuda")


@pytest.mark.parametrize(
    ("url", "spec"),
    [
        ("https://download.pytorch.org/whl/cu128", "torch==2.13.0+cu128"),
        ("https://download.pytorch.org/whl/cu126/", "torch==2.13.0+cu126"),
        ("https://mirror.example/torch-cuda/simple", "torch==2.13.0"),
    ],
)
def test_index_url_is_overridable(tmp_path: Path, url: str, spec: str) -> None:
    _fake_smi(tmp_path / "bin", ["NVIDIA A100-SXM4-80GB"])
    done = _plan(tmp_path, smi=tmp_path / "bin", env={"VMB_TORCH_INDEX_URL": url})
    assert _pip_lines(done.stdout)[0] == f"pip install {spec} --index-url {url}"


def test_bad_gpu_value_is_a_clear_error(tmp_path: Path) -> None:
    done = _plan(tmp_path, "--gpu", "rocm")
    assert done.returncode == 2
    assert "--gpu must be auto, cuda or cpu, not 'rocm'" in done.stderr
    assert "Traceback" not in done.stderr and not _pip_lines(done.stdout)
    done = _plan(tmp_path, "--gpu")
    assert done.returncode == 2 and "--gpu needs auto, cuda or cpu" in done.stderr


def test_switching_builds_removes_the_other_onnxruntime_first(tmp_path: Path) -> None:
    """A venv holding onnxruntime (CPU) on a machine now planned for CUDA: both are removed
    before the engine requirements install onnxruntime-gpu, so they never coexist."""
    _fake_smi(tmp_path / "bin", ["NVIDIA H200"])
    fake_venv = tmp_path / "old-venv"
    (fake_venv / "bin").mkdir(parents=True)
    _script(  # answers `python -m pip ... show NAME` like pip: 0 only for onnxruntime
        fake_venv / "bin" / "python",
        'for a in "$@"; do last="$a"; done\n[ "$last" = onnxruntime ]\n',
    )
    env = {**os.environ, "PATH": _path_without_smi(tmp_path / "bin"), "VMB_VENV": str(fake_venv)}
    done = subprocess.run(
        ["bash", str(INSTALL), "--print-plan"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    pip = _pip_lines(done.stdout)
    assert pip[1] == "pip uninstall -y onnxruntime onnxruntime-gpu"
    assert pip[2].startswith("pip install torch==2.13.0 -r ")
    assert "replacing onnxruntime with onnxruntime-gpu" in done.stdout
    # and the CPU plan on the same venv leaves it alone (onnxruntime-gpu is not there)
    done = subprocess.run(
        ["bash", str(INSTALL), "--print-plan", "--gpu", "cpu"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert _pip_lines(done.stdout) == CPU_COMMANDS


def _gpu_plan(request: str, os_name: str, path: str) -> tuple[int, dict[str, str]]:
    keys = ("GPU_KIND", "GPU_REASON", "TORCH_SPEC", "TORCH_INDEX_URL", "ORT_PACKAGE", "ORT_OTHER")
    script = f'. "{GPU_SH}"; gpu_plan "$1" "$2"; rc=$?; echo "rc=$rc"; ' + "; ".join(
        f'echo "{k}=${k}"' for k in keys
    )
    done = subprocess.run(
        ["bash", "-c", script, "plan", request, os_name],
        capture_output=True, text=True, timeout=30, env={**os.environ, "PATH": path}, check=True,
    )  # fmt: skip
    values = dict(line.split("=", 1) for line in done.stdout.splitlines())
    return int(values.pop("rc")), values


def test_macos_gets_the_default_mps_build(tmp_path: Path) -> None:
    _fake_smi(tmp_path / "bin", ["NVIDIA H200"])  # even with one (eGPU), macOS has no CUDA
    rc, plan = _gpu_plan("auto", "Darwin", _path_without_smi(tmp_path / "bin"))
    assert rc == 0
    assert plan["GPU_KIND"] == "mps" and "MPS" in plan["GPU_REASON"]
    assert plan["TORCH_SPEC"] == "torch==2.13.0" and plan["TORCH_INDEX_URL"] == ""
    assert plan["ORT_PACKAGE"] == "onnxruntime"
    rc, plan = _gpu_plan("cuda", "Darwin", _path_without_smi(None))
    assert rc == 2 and "macOS has no CUDA" in plan["GPU_REASON"]
    rc, plan = _gpu_plan("cpu", "Darwin", _path_without_smi(None))
    assert rc == 0 and plan["GPU_KIND"] == "cpu"


def test_cuda_requirements_swap_only_onnxruntime(tmp_path: Path) -> None:
    out = tmp_path / "full-cuda.txt"
    subprocess.run(
        ["bash", "-c", f'. "{GPU_SH}"; cuda_requirements "$1" "$2"', "x",
         str(ROOT / "requirements" / "full.txt"), str(out)],
        check=True, timeout=30,
    )  # fmt: skip
    before = (ROOT / "requirements" / "full.txt").read_text().splitlines()
    after = out.read_text().splitlines()
    assert [x for x in before if not x.startswith("onnxruntime==")] == after[:-1]
    assert after[-1] == "onnxruntime-gpu==1.31.1"
    assert any(x.startswith("onnxruntime==") for x in before)
    assert not any(x.startswith("onnxruntime==") for x in after)


def _logging_venv(root: Path) -> tuple[Path, Path]:
    """A venv whose python logs every call and installs nothing: `pip show` finds nothing,
    `import engine, bridge` fails (so the installer does its pip steps), pip calls succeed."""
    log = root / "calls.log"
    (root / "venv" / "bin").mkdir(parents=True)
    _script(
        root / "venv" / "bin" / "python",
        f'echo "$*" >> "{log}"\ncase "$*" in *" show "*|-c*) exit 1 ;; esac\nexit 0\n',
    )
    return root / "venv", log


@pytest.mark.parametrize("gpu", ["cpu", "cuda"])
def test_a_real_run_makes_exactly_the_planned_pip_calls(tmp_path: Path, gpu: str) -> None:
    venv, log = _logging_venv(tmp_path)
    _fake_smi(tmp_path / "bin", ["NVIDIA H200"])
    env = {**os.environ, "PATH": _path_without_smi(tmp_path / "bin"), "VMB_VENV": str(venv)}
    env.pop("VMB_GPU", None)
    plan = subprocess.run(
        ["bash", str(INSTALL), "--print-plan", "--gpu", gpu],
        capture_output=True, text=True, timeout=60, env=env, check=True,
    )  # fmt: skip
    done = subprocess.run(
        ["bash", str(INSTALL), "--no-system", "--gpu", gpu],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    prefix = "-m pip --disable-pip-version-check -q "
    calls = [c for c in log.read_text().splitlines() if c.startswith(prefix)]
    installs = ["pip " + c[len(prefix) :] for c in calls if " show " not in f" {c} "]
    assert installs == _pip_lines(plan.stdout)  # --print-plan tells the truth
    stamps = list(venv.glob(".vmb-install-*"))
    assert len(stamps) == 1
    cuda_reqs = venv / ".vmb-requirements-cuda.txt"
    if gpu == "cuda":
        text = cuda_reqs.read_text()
        assert "onnxruntime-gpu==1.31.1" in text and "\nonnxruntime==" not in f"\n{text}"
    else:
        assert not cuda_reqs.exists()
        assert installs == CPU_COMMANDS
    # the stamp differs between the builds: switching reinstalls, a rerun only checks
    assert (gpu == "cuda") == (stamps[0].name != ".vmb-install-" + _cpu_stamp())


def _cpu_stamp() -> str:
    import hashlib

    req = ROOT / "requirements"
    src = (
        "".join(p.read_text() for p in (req / "engine.txt", req / "full.txt", req / "nodeps.txt"))
        + (ROOT / "pyproject.toml").read_text()
        + "dev=0"
    )
    return hashlib.sha256(src.encode()).hexdigest()[:16]
