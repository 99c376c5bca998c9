"""install.sh and the Blender extension: the folder in Blender's user extensions repository
(per Blender 4.2+ version), the zip for "Install from Disk", and an exact uninstall."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "installer" / "install.sh"
ROWS = [
    line.split("\t")
    for line in (ROOT / "plugins" / "blender" / "files.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]
LISTED = [src for src, _dest in ROWS if src != "@config"]
NAMES = sorted(dest.removeprefix("EXT/") for _src, dest in ROWS)


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("BLENDER_USER_EXTENSIONS",)}
    return subprocess.run(
        ["bash", str(INSTALL), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **env},
        check=False,
    )


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_files_list_is_the_extension_and_the_shared_sources() -> None:
    assert "blender/blender_manifest.toml" in LISTED and "blender/__init__.py" in LISTED
    assert {"common/vmb_client.py", "common/vmb_flow.py"} <= set(LISTED)
    assert ["@config", "EXT/vmb_plugin.json"] in ROWS
    assert all(dest == "EXT/" + Path(src).name for src, dest in ROWS if src != "@config")
    for rel in LISTED:
        assert (ROOT / "plugins" / rel).is_file(), rel
    shipped = {p.name for p in (ROOT / "plugins" / "blender").glob("*.py")}
    assert shipped <= {Path(rel).name for rel in LISTED}  # no module left out of the zip


def test_host_dir_install_zip_and_exact_uninstall(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    done = _run("--hosts-only", "--host-dir", str(hosts), env={"HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    ext = hosts / "blender" / "extensions" / "user_default" / "vmb_score"
    assert _files(ext) == NAMES
    for rel in LISTED:  # plugins/common stays the one source: byte-identical copies
        assert (ext / Path(rel).name).read_bytes() == (ROOT / "plugins" / rel).read_bytes()
    with zipfile.ZipFile(hosts / "blender" / "vmb_score.zip") as zf:
        assert sorted(zf.namelist()) == NAMES  # manifest at the zip's root
        assert zf.read("vmb_flow.py") == (ROOT / "plugins/common/vmb_flow.py").read_bytes()
    undone = _run("--uninstall", "--host-dir", str(hosts), env={"HOME": str(tmp_path)})
    assert undone.returncode == 0, undone.stderr
    assert not (hosts / "blender").exists()


def test_real_folders_only_for_blender_4_2_and_newer(tmp_path: Path) -> None:
    home, vmb_home = tmp_path / "user", tmp_path / "vmb"
    config = home / ".config" / "blender"
    for version in ("3.6", "4.1", "4.2", "5.0"):
        (config / version / "config").mkdir(parents=True)
    mine = config / "5.0" / "extensions" / "user_default" / "someone_else"
    mine.mkdir(parents=True)
    (mine / "__init__.py").write_text("# a user's extension\n")
    env = {"HOME": str(home), "VMB_HOME": str(vmb_home), "XDG_CONFIG_HOME": ""}
    done = _run("--hosts-only", env=env)
    assert done.returncode == 0, done.stderr
    for version in ("4.2", "5.0"):
        ext = config / version / "extensions" / "user_default" / "vmb_score"
        assert _files(ext) == NAMES, version
    for version in ("3.6", "4.1"):
        assert not (config / version / "extensions").exists(), version
    assert (vmb_home / "blender" / "vmb_score.zip").is_file()
    assert "Add-ons > 'VMB Score'" in done.stdout
    undone = _run("--uninstall", env=env)
    assert undone.returncode == 0, undone.stderr
    assert not (config / "4.2" / "extensions").exists()
    assert _files(config / "5.0" / "extensions") == ["user_default/someone_else/__init__.py"]
    assert not (vmb_home / "blender").exists()


def test_no_blender_folder_says_install_from_disk(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path / "user"), "VMB_HOME": str(tmp_path / "vmb")}
    done = _run("--hosts-only", env={**env, "XDG_CONFIG_HOME": ""})
    assert done.returncode == 0, done.stderr
    zip_path = tmp_path / "vmb" / "blender" / "vmb_score.zip"
    assert zip_path.is_file() and "Install from Disk" in done.stdout
    assert str(zip_path) in done.stdout


def test_blender_user_extensions_variable_wins(tmp_path: Path) -> None:
    ext_root = tmp_path / "exts"
    env = {
        "HOME": str(tmp_path / "user"),
        "VMB_HOME": str(tmp_path / "vmb"),
        "BLENDER_USER_EXTENSIONS": str(ext_root),
    }
    done = _run("--hosts-only", env=env)
    assert done.returncode == 0, done.stderr
    assert _files(ext_root / "user_default" / "vmb_score") == NAMES
