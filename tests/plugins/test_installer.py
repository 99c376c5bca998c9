"""installer/install.sh host-plugin modes, into temp folders (--hosts-only --host-dir)."""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "installer" / "install.sh"
PLUGIN_MODULES = (
    "vmb_client", "vmb_flow", "vmb_reaper", "vmb_reaper_edit", "vmb_reaper_jsfx",
    "vmb_reaper_place", "vmb_resolve", "vmb_resolve_base", "vmb_resolve_edit", "vmb_resolve_panel",
    "vmb_resolve_place",
)  # fmt: skip
FOREIGN_KB = 'KEY 1 65 0 0\nSCR 4 0 RSabc "Custom: someone else" "/x/other.lua"\n'


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(INSTALL), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def _snapshot(root: Path) -> dict[str, str | None]:
    return {
        str(p.relative_to(root)): (p.read_text() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def host_dir(tmp_path: Path) -> Path:
    root = tmp_path / "hosts"
    (root / "reaper" / "Scripts" / "Mine").mkdir(parents=True)
    (root / "reaper" / "Scripts" / "Mine" / "tool.lua").write_text("-- a user's script\n")
    (root / "reaper" / "reaper-kb.ini").write_text(FOREIGN_KB)
    return root


def test_hosts_only_installs_registers_and_uninstalls_exactly(host_dir: Path) -> None:
    before = _snapshot(host_dir)
    done = _run("--hosts-only", "--host-dir", str(host_dir))
    assert done.returncode == 0, done.stderr
    utility = host_dir / "resolve" / "Fusion" / "Scripts" / "Utility"
    lib = host_dir / "resolve" / "Fusion" / "vmb_score_lib"
    scripts = host_dir / "reaper" / "Scripts" / "VMB Score"
    for path in (
        utility / "VMB Score.py",
        utility / "VMB Score whole timeline.py",
        lib / "vmb_resolve.py",
        lib / "vmb_client.py",
        lib / "vmb_flow.py",
        scripts / "vmb_flow.py",
        scripts / "VMB Generate score for selection.py",
        scripts / "VMB Score whole project.py",
        scripts / "VMB Insert controls.py",
        scripts / "vmb_reaper.py",
        scripts / "vmb_client.py",
        host_dir / "reaper" / "Effects" / "VMB Score" / "VMB Controls.jsfx",
    ):
        assert path.is_file(), path
    config = json.loads((scripts / "vmb_plugin.json").read_text())
    assert config["installed_from"] == str(ROOT)
    assert config["vmb"] is None or Path(config["vmb"]).name == "vmb"
    kb = (host_dir / "reaper" / "reaper-kb.ini").read_text()
    ours = [line for line in kb.splitlines() if "Custom: VMB: " in line]
    assert len(ours) == _actions() and kb.startswith(FOREIGN_KB)
    for line in ours:
        parts = line.split(" ", 4)
        assert parts[:3] == ["SCR", "4", "0"]
        assert parts[3].startswith("RS") and len(parts[3]) == 42 and parts[3][2:].isalnum()
        assert str(scripts) in line
    # a second run replaces the first: no duplicate actions
    assert _run("--hosts-only", "--host-dir", str(host_dir)).returncode == 0
    kb2 = (host_dir / "reaper" / "reaper-kb.ini").read_text()
    assert kb2.count("Custom: VMB: ") == _actions()
    # uninstall leaves exactly what was there before
    gone = _run("--uninstall", "--host-dir", str(host_dir))
    assert gone.returncode == 0, gone.stderr
    assert _snapshot(host_dir) == before
    again = _run("--uninstall", "--host-dir", str(host_dir))
    assert again.returncode == 0 and "no host plugins installed" in again.stdout


def test_install_into_empty_dir_and_uninstall_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "fresh"
    assert _run("--hosts-only", f"--host-dir={target}").returncode == 0
    assert (target / "reaper" / "reaper-kb.ini").read_text().count("SCR 4 0 RS") == _actions()
    assert _run("--uninstall", "--host-dir", str(target)).returncode == 0
    assert list(target.iterdir()) == []


def test_already_registered_action_is_not_duplicated(host_dir: Path) -> None:
    script = host_dir / "reaper" / "Scripts" / "VMB Score" / "VMB Insert controls.py"
    kb = host_dir / "reaper" / "reaper-kb.ini"
    kb.write_text(FOREIGN_KB + f'SCR 4 0 RSmine "Custom: my name for it" "{script}"\n')
    assert _run("--hosts-only", "--host-dir", str(host_dir)).returncode == 0
    assert kb.read_text().count(str(script)) == 1
    assert _run("--uninstall", "--host-dir", str(host_dir)).returncode == 0
    assert f'"Custom: my name for it" "{script}"' in kb.read_text()  # the user's line stays


def test_bad_options_and_help() -> None:
    bad = _run("--bogus")
    assert bad.returncode == 2 and "unknown option" in bad.stderr
    assert _run("--host-dir").returncode == 2
    usage = _run("--help")
    assert (
        usage.returncode == 0 and "--hosts-only" in usage.stdout and "--uninstall" in usage.stdout
    )


def test_installed_plugins_find_their_modules(tmp_path: Path, monkeypatch) -> None:
    """The installed layout works: REAPER scripts import vmb_reaper/vmb_client next to them;
    the Resolve menu script finds vmb_score_lib."""
    from support import fake_resolve as fr
    from support.fake_reaper import FakeReaper

    target = tmp_path / "h"
    assert _run("--hosts-only", "--host-dir", str(target)).returncode == 0
    saved_path = list(sys.path)
    saved_mods = {m: sys.modules.pop(m) for m in PLUGIN_MODULES if m in sys.modules}
    try:
        reaper = FakeReaper(target / "reaper")
        monkeypatch.setitem(sys.modules, "reaper_python", reaper.module())
        ns = reaper.run_script(
            target / "reaper" / "Scripts" / "VMB Score" / "VMB Insert controls.py"
        )
        assert ns["VMB_RESULT"]["new"] is True and not reaper.messages
        for mod in ("vmb_reaper", "vmb_flow", "vmb_client"):
            assert sys.modules[mod].__file__.startswith(str(target)), mod
        host = fr.make_host()
        script = target / "resolve" / "Fusion" / "Scripts" / "Utility" / "VMB Score.py"
        runpy.run_path(str(script), init_globals=host)
        for mod in ("vmb_resolve", "vmb_resolve_place", "vmb_flow", "vmb_client"):
            assert sys.modules[mod].__file__.startswith(str(target)), mod
        assert "Nothing to score" in host["disp"].dialogs[-1]
    finally:
        sys.path[:] = saved_path
        for m in PLUGIN_MODULES:
            sys.modules.pop(m, None)
        sys.modules.update(saved_mods)


# -- issue 12: one list per host, the library out of menu folders, REAPER closed ---------------
def _actions() -> int:
    """The REAPER actions plugins/reaper/files.txt registers (rows with a title)."""
    return sum(1 for row in _listed("reaper") if len(row) > 2)


def _listed(host: str) -> list[list[str]]:
    lines = (ROOT / "plugins" / host / "files.txt").read_text().splitlines()
    return [line.split("\t") for line in lines if line and not line.startswith("#")]


def test_resolve_menu_folder_holds_only_the_menu_scripts(tmp_path: Path) -> None:
    """Resolve lists every .py under Fusion/Scripts (subfolders too) as a menu entry."""
    target = tmp_path / "h"
    assert _run("--hosts-only", "--host-dir", str(target)).returncode == 0
    scripts = target / "resolve" / "Fusion" / "Scripts"
    menu = sorted(p.name for p in scripts.rglob("*.py"))
    listed = sorted(
        row[1].split("/", 1)[1] for row in _listed("davinci") if row[1].startswith("MENU/")
    )
    assert menu == listed and "VMB Score.py" in menu
    assert not [m for m in menu if m.startswith("vmb_")]  # no library module is a menu entry
    lib = target / "resolve" / "Fusion" / "vmb_score_lib"
    assert {"vmb_resolve.py", "vmb_client.py", "vmb_flow.py"} <= {p.name for p in lib.iterdir()}


def test_both_installers_read_the_lists(tmp_path: Path) -> None:
    """Every listed file is installed, and no installer names a plugin file itself."""
    target = tmp_path / "h"
    assert _run("--hosts-only", "--host-dir", str(target)).returncode == 0
    roots = {
        "MENU": target / "resolve" / "Fusion" / "Scripts" / "Utility",
        "LIB": target / "resolve" / "Fusion" / "vmb_score_lib",
        "SCRIPTS": target / "reaper" / "Scripts" / "VMB Score",
        "EFFECTS": target / "reaper" / "Effects" / "VMB Score",
    }
    kb = (target / "reaper" / "reaper-kb.ini").read_text()
    for host in ("davinci", "reaper"):
        rows = _listed(host)
        assert rows
        for row in rows:
            key, rel = row[1].split("/", 1)
            dest = roots[key] / rel
            assert dest.is_file(), dest
            if row[0] != "@config":
                assert dest.read_bytes() == (ROOT / "plugins" / row[0]).read_bytes()
            if len(row) > 2:
                assert f'"Custom: {row[2]}" "{dest}"' in kb
    installers = (ROOT / "installer" / "hosts.sh").read_text()
    installers += (ROOT / "installer" / "install.ps1").read_text()
    for host in ("davinci", "reaper"):
        for row in _listed(host):
            if row[0] != "@config":
                assert Path(row[0]).name not in installers, f"{row[0]} is hard-coded"


def test_refuses_while_reaper_runs(host_dir: Path, tmp_path: Path) -> None:
    """REAPER rewrites reaper-kb.ini when it quits: never edit it while REAPER runs."""
    fake = tmp_path / "bin" / "reaper"  # a process named like REAPER's (Linux: `reaper`)
    fake.parent.mkdir()
    shutil.copy("/bin/sleep", fake)
    before = _snapshot(host_dir)
    proc = subprocess.Popen([str(fake), "60"])
    try:
        done = _run("--hosts-only", "--host-dir", str(host_dir))
        assert done.returncode == 1
        assert "REAPER is running" in done.stderr and str(proc.pid) in done.stderr
        assert "Quit REAPER" in done.stderr
        assert _snapshot(host_dir) == before  # nothing written, kb untouched
    finally:
        proc.kill()
        proc.wait()
    assert _run("--hosts-only", "--host-dir", str(host_dir)).returncode == 0
    proc = subprocess.Popen([str(fake), "60"])
    try:
        gone = _run("--uninstall", "--host-dir", str(host_dir))
        assert gone.returncode == 1 and "REAPER is running" in gone.stderr
        assert "Custom: VMB: " in (host_dir / "reaper" / "reaper-kb.ini").read_text()
    finally:
        proc.kill()
        proc.wait()


# -- review of issue 12: a failed run can be undone; a relative PYTHON; Python's caches ----------
def _failing_python(tmp_path: Path) -> str:
    """An interpreter that fails: the Blender zip step (the last step) fails after every
    other file has been copied."""
    fake = tmp_path / "bin" / "python-broken"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    return str(fake)


def test_a_failed_install_can_be_uninstalled(host_dir: Path, tmp_path: Path) -> None:
    before = _snapshot(host_dir)
    env = {"PYTHON": _failing_python(tmp_path), "HOME": str(tmp_path)}
    failed = _run("--hosts-only", "--host-dir", str(host_dir), env=env)
    assert failed.returncode != 0 and "could not write" in failed.stdout
    assert (host_dir / "reaper" / "Scripts" / "VMB Score" / "vmb_reaper.py").is_file()
    gone = _run("--uninstall", "--host-dir", str(host_dir), env={"HOME": str(tmp_path)})
    assert gone.returncode == 0, gone.stderr
    assert "no host plugins installed" not in gone.stdout
    assert _snapshot(host_dir) == before


def test_what_an_older_failed_run_left_is_uninstalled(host_dir: Path, tmp_path: Path) -> None:
    """Older installers kept the list in *.manifest.new until the end: read that too."""
    before = _snapshot(host_dir)
    assert _run("--hosts-only", "--host-dir", str(host_dir)).returncode == 0
    manifest = host_dir / "vmb-score-plugins.manifest"
    manifest.rename(manifest.with_name(manifest.name + ".new"))
    gone = _run("--uninstall", "--host-dir", str(host_dir))
    assert gone.returncode == 0 and "removed the host plugins" in gone.stdout
    assert _snapshot(host_dir) == before


def test_relative_python_path_works(tmp_path: Path) -> None:
    wrapper = tmp_path / "bin" / "py"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    target = tmp_path / "h"
    done = subprocess.run(
        ["bash", str(INSTALL), "--hosts-only", "--host-dir", "h"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
        env={**os.environ, "PYTHON": "bin/py", "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (target / "blender" / "vmb_score.zip").is_file()


def test_uninstall_removes_the_caches_of_installed_modules(tmp_path: Path) -> None:
    """Hosts import the installed modules, and Python writes __pycache__ beside them."""
    target = tmp_path / "h"
    assert _run("--hosts-only", "--host-dir", str(target)).returncode == 0
    ext = target / "blender" / "extensions" / "user_default" / "vmb_score"
    scripts = target / "reaper" / "Scripts" / "VMB Score"
    lib = target / "resolve" / "Fusion" / "vmb_score_lib"
    for folder in (ext, scripts, lib):
        done = subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(folder)],
            capture_output=True,
            check=False,
        )
        assert done.returncode == 0 and (folder / "__pycache__").is_dir()
    # a user's own module in the REAPER folder keeps its cache (and so its folder)
    mine = target / "reaper" / "Scripts" / "Mine"
    mine.mkdir()
    (mine / "tool.py").write_text("X = 1\n")
    (scripts / "my_tool.py").write_text("Y = 2\n")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(scripts)], check=True)
    assert _run("--uninstall", "--host-dir", str(target)).returncode == 0
    assert not ext.exists() and not lib.exists()
    left = sorted(str(p.relative_to(scripts)) for p in scripts.rglob("*"))
    assert left[0] == "__pycache__" and left[1].startswith("__pycache__/my_tool.")
    assert left[2:] == ["my_tool.py"]


def test_install_ps1_writes_utf8_without_bom_and_zips_the_config() -> None:
    """No PowerShell here: check the text. Windows PowerShell 5.1's `-Encoding UTF8` writes a
    BOM and its default encoding is the ANSI code page; the zip must carry vmb_plugin.json."""
    ps1 = (ROOT / "installer" / "install.ps1").read_text()
    assert "UTF8Encoding($false)" in ps1
    code = [line.split("#")[0] for line in ps1.splitlines()]
    for line in code:
        assert "-Encoding UTF8" not in line or "Get-Content" in line, line
        assert "Add-Content" not in line, line
        if "Set-Content" in line:  # only the engine's requirements list (ASCII) may use it
            assert "$full" in line, line
    zip_part = ps1[ps1.index("function Install-Blender") :]
    zip_part = zip_part[: zip_part.index("Compress-Archive")]
    assert '"@config"' in zip_part and "Get-PluginConfigJson" in zip_part
    assert "$script:ManifestPath = $P.Manifest" in ps1  # entries land in the manifest at once
