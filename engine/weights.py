"""Model registry: the manifest (engine/models.json), the local model folders, verify, download.

Layout: ``<model_dir>/<name>/`` holds a model's own files plus ``vmb-model.json``:
``{"name", "weights": "real"|"random", "files": {path: {"size", "sha256"}}}``, written last,
so a folder without it is incomplete. Nothing fetches at run time: only `vmb models
download` touches the network. Every component can write a tiny random-weight folder in
the production layout (manifest key ``tiny_builder``: ``"module:function(out_dir, seed)"``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from bridge.errors import InvalidRequest, WeightsError
from engine.util import atomic

MARKER = "vmb-model.json"
WeightsKind = Literal["real", "random"]


@dataclass(frozen=True)
class ModelFile:
    path: str  # inside the model folder
    size: int | None
    sha256: str | None
    repo: str | None = None  # another hub repo for this file (default: the model's)
    repo_path: str | None = None  # its name there (default: `path`)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    component: str
    description: str
    repo: str | None
    revision: str
    licence: str
    licence_url: str
    gated: bool
    files: tuple[ModelFile, ...]
    tiny_builder: str | None


@dataclass(frozen=True)
class ModelFolder:
    """A model folder found on disk and checked to be complete."""

    name: str
    path: Path
    weights: WeightsKind


@dataclass(frozen=True)
class VerifyReport:
    name: str
    path: Path
    ok: bool
    weights: str | None
    problems: tuple[str, ...]


def load_manifest() -> dict[str, ModelSpec]:
    data = json.loads(resources.files("engine").joinpath("models.json").read_text())
    if data.get("version") != 1:
        raise WeightsError(f"model manifest version {data.get('version')} is not supported")
    specs = {}
    for name, m in data["models"].items():
        specs[name] = ModelSpec(
            name=name,
            component=m["component"],
            description=m["description"],
            repo=(m.get("source") or {}).get("repo"),
            revision=(m.get("source") or {}).get("revision", "main"),
            licence=m["licence"],
            licence_url=m.get("licence_url", ""),
            gated=bool(m.get("gated", False)),
            files=tuple(
                ModelFile(
                    f["path"], f.get("size"), f.get("sha256"), f.get("repo"), f.get("repo_path")
                )
                for f in m["files"]
            ),
            tiny_builder=m.get("tiny_builder"),
        )
    return specs


def spec(name: str) -> ModelSpec:
    specs = load_manifest()
    if name not in specs:
        raise InvalidRequest(f"unknown model {name!r}; known models: {', '.join(specs)}")
    return specs[name]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def finalize_folder(folder: Path, name: str, weights: WeightsKind) -> Path:
    """Hash every file and write the marker last (atomically): the folder is now complete."""
    files = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MARKER:
            rel = p.relative_to(folder).as_posix()
            files[rel] = {"size": p.stat().st_size, "sha256": sha256_file(p)}
    marker = folder / MARKER
    return atomic.write_text(
        marker, json.dumps({"name": name, "weights": weights, "files": files}, indent=2)
    )


def _read_marker(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / MARKER).read_text())
    except FileNotFoundError:
        raise WeightsError(
            f"{folder} is not a complete model folder (no {MARKER}); "
            "run `vmb models download` or `vmb models tiny`"
        ) from None
    except ValueError as exc:
        raise WeightsError(f"{folder / MARKER} is corrupt: {exc}") from None


def verify(name: str, model_dir: Path, deep: bool = True) -> VerifyReport:
    """Check presence, sizes and hashes against the marker and the manifest."""
    folder = model_dir / name
    problems: list[str] = []
    if not folder.is_dir():
        return VerifyReport(name, folder, False, None, (f"not installed ({folder} missing)",))
    try:
        marker = _read_marker(folder)
    except WeightsError as exc:
        return VerifyReport(name, folder, False, None, (exc.message,))
    recorded: dict[str, dict[str, Any]] = marker.get("files", {})
    expected = {f.path: f for f in spec(name).files} if marker.get("weights") == "real" else {}
    for rel, info in recorded.items():
        p = folder / rel
        if not p.is_file():
            problems.append(f"missing file {rel}")
            continue
        if p.stat().st_size != info["size"]:
            problems.append(f"{rel}: size {p.stat().st_size} != recorded {info['size']}")
        elif deep and sha256_file(p) != info["sha256"]:
            problems.append(f"{rel}: sha256 differs from the recorded hash (corrupt or changed)")
    for rel, f in expected.items():
        info = recorded.get(rel)
        if info is None:
            problems.append(f"missing file {rel} (named in the manifest)")
        elif f.sha256 and info["sha256"] != f.sha256:
            problems.append(f"{rel}: sha256 differs from the manifest")
        elif f.size and info["size"] != f.size:
            problems.append(f"{rel}: size differs from the manifest")
    return VerifyReport(name, folder, not problems, marker.get("weights"), tuple(problems))


def resolve(name: str, model_dir: Path) -> ModelFolder:
    """The complete folder of a model, or WeightsError saying what is missing and how to fix it."""
    folder = model_dir / name
    if not folder.is_dir():
        raise WeightsError(
            f"model {name!r} is not installed in {model_dir}; run `vmb models download {name}` "
            f"(or `vmb models tiny --out {model_dir}` for random test weights)"
        )
    marker = _read_marker(folder)
    missing = [rel for rel in marker.get("files", {}) if not (folder / rel).is_file()]
    if missing:
        raise WeightsError(f"model {name!r} in {folder} is missing files: {', '.join(missing)}")
    kind = marker.get("weights")
    if kind not in ("real", "random"):  # never assume real: a hand-made marker proves nothing
        raise WeightsError(
            f"{folder / MARKER} does not say whether the weights are real or random "
            f"(weights: {kind!r}); run `vmb models download {name}` or `vmb models tiny` again"
        )
    return ModelFolder(name=name, path=folder, weights=kind)


def installed(model_dir: Path) -> dict[str, str]:
    """name -> weights kind for every complete folder."""
    out = {}
    for name in load_manifest():
        try:
            out[name] = resolve(name, model_dir).weights
        except WeightsError:
            continue
    return out


def write_tiny(out_dir: Path, names: list[str] | None = None, seed: int = 0) -> list[str]:
    """Write tiny random-weight folders for every component that has a tiny builder."""
    specs = load_manifest()
    todo = names or [n for n, s in specs.items() if s.tiny_builder]
    written = []
    for name in todo:
        s = spec(name)
        if not s.tiny_builder:
            raise InvalidRequest(f"model {name!r} has no tiny builder yet")
        module, func = s.tiny_builder.split(":")
        folder = out_dir / name
        staging = out_dir / f".{name}.staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        getattr(importlib.import_module(module), func)(staging, seed)
        finalize_folder(staging, name, "random")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)
        written.append(name)
    return written


def download(name: str, model_dir: Path, accept_licence: bool = False) -> ModelFolder:
    """Fetch a model's files from its hub repo (the only network step of the product)."""
    s = spec(name)
    if not s.repo:
        raise WeightsError(f"model {name!r} has no public source yet")
    if not accept_licence:
        raise WeightsError(
            f"{name} is under: {s.licence} ({s.licence_url}). "
            "Read it, then re-run with --accept-licence."
        )
    from huggingface_hub import hf_hub_download  # network only here

    staging = model_dir / f".{name}.download"
    staging.mkdir(parents=True, exist_ok=True)
    for f in s.files:
        if f.repo is None:
            hf_hub_download(s.repo, f.path, revision=s.revision, local_dir=staging)
            continue
        got = Path(hf_hub_download(f.repo, f.repo_path or f.path, local_dir=staging / ".other"))
        (staging / f.path).parent.mkdir(parents=True, exist_ok=True)
        os.replace(got, staging / f.path)
    shutil.rmtree(staging / ".other", ignore_errors=True)
    shutil.rmtree(staging / ".cache", ignore_errors=True)
    finalize_folder(staging, name, "real")
    folder = model_dir / name
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(staging, folder)
    rep = verify(name, model_dir)
    if not rep.ok:
        raise WeightsError(f"downloaded {name} does not verify: {'; '.join(rep.problems)}")
    return resolve(name, model_dir)
