"""The music bridge's encoders at run time: CLAP (audio, text) and CLIP (image, text).

Each encoder runs either the torch module or, when `vmb models export-onnx` has written graphs
for exactly the installed weights, onnxruntime sessions of the same graphs (faster start, no
autograd, and the path a GPU box can hand to TensorRT). Pre-processing (windows, tokens,
pixels) is numpy and shared, so both runtimes see identical inputs; a test checks parity.

ONNX files live beside the model folders, in ``<model_dir>/onnx/<name>/`` with an
``export.json`` naming the identity (hash of the weight files) they were exported from, so
stale graphs are ignored after the weights change.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bridge.errors import WeightsError
from engine import weights
from engine.retrieve.full.encoders import clap, clip
from engine.util.device import device_type, onnx_providers

Runtime = Literal["torch", "onnx"]  # what runs an encoder ("backend" means draft or full)
ONNX_OPSET = 18
EXPORT_FILE = "export.json"
_BATCH = 8  # windows / images per forward pass


def model_identity(folder: Path) -> str:
    """Hash of the weight files recorded in the folder's marker: what the embeddings in a
    library depend on (a library refuses queries from another model)."""
    marker = json.loads((folder / weights.MARKER).read_text())
    files = {k: v.get("sha256") for k, v in sorted(marker.get("files", {}).items())}
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]


def onnx_dir(model_dir: Path, name: str) -> Path:
    return model_dir / "onnx" / name


def _torch_threads() -> None:
    import torch

    if os.environ.get("VMB_TORCH_THREADS"):
        torch.set_num_threads(int(os.environ["VMB_TORCH_THREADS"]))


class _Graphs:
    """Named onnxruntime sessions, one per exported function, on the device's providers
    (CUDA first where asked for and offered, the CPU as the fallback)."""

    def __init__(self, folder: Path, names: tuple[str, ...], device: str = "cpu") -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        threads = int(os.environ.get("VMB_ORT_THREADS", "0"))
        if threads:
            opts.intra_op_num_threads = threads
        providers = onnx_providers(device)
        self.sessions = {
            n: ort.InferenceSession(str(folder / f"{n}.onnx"), sess_options=opts,
                                    providers=providers)
            for n in names
        }  # fmt: skip
        # onnxruntime falls back to the CPU when CUDA cannot start (no driver, no cuDNN):
        # what the sessions really use, not what was asked for
        self.provider = self.sessions[names[0]].get_providers()[0]

    def run(self, name: str, feeds: dict[str, np.ndarray]) -> np.ndarray:
        session = self.sessions[name]
        first = session.get_inputs()[0]
        if isinstance(first.shape[0], int) and first.shape[0] == 1:  # a static one-row graph
            rows = len(next(iter(feeds.values())))
            outs = [
                session.run(None, {k: v[i : i + 1] for k, v in feeds.items()})[0]
                for i in range(rows)
            ]
            return np.concatenate(outs).astype(np.float32)
        return np.asarray(session.run(None, feeds)[0], dtype=np.float32)


def _usable_onnx(model_dir: Path, name: str, identity: str, graphs: tuple[str, ...]) -> bool:
    folder = onnx_dir(model_dir, name)
    try:
        meta = json.loads((folder / EXPORT_FILE).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("identity") == identity and all(
        (folder / f"{g}.onnx").is_file() for g in graphs
    )


@dataclass(frozen=True)
class EncoderInfo:
    name: str
    weights: str  # "real" | "random"
    identity: str
    runtime: Runtime
    dim: int
    provider: str = "torch cpu"  # what ran: an onnxruntime execution provider, or torch's device

    def ran_on(self) -> str:
        return f"{self.runtime} {self.provider}" if self.runtime == "onnx" else self.provider


class ClapEncoder:
    """CLAP audio and text embeddings (unit vectors, float32)."""

    GRAPHS = ("audio", "text")

    def __init__(
        self, model_dir: Path, runtime: Runtime | Literal["auto"] = "auto", device: str = "auto"
    ) -> None:
        """``device``: the models.device setting (auto | cuda | mps | cpu); it picks the ONNX
        providers. The torch runtime runs on the CPU."""
        folder = weights.resolve(clap.MODEL_NAME, model_dir)
        self.folder = folder.path
        self.cfg = clap.read_config(folder.path)
        identity = model_identity(folder.path)
        if runtime == "auto":
            runtime = (
                "onnx"
                if _usable_onnx(model_dir, clap.MODEL_NAME, identity, self.GRAPHS)
                else "torch"
            )
        elif runtime == "onnx" and not _usable_onnx(
            model_dir, clap.MODEL_NAME, identity, self.GRAPHS
        ):
            raise WeightsError(
                "no ONNX export of clap-music for these weights; run `vmb models export-onnx`"
            )
        self._lock = threading.Lock()
        if runtime == "onnx":
            from transformers import RobertaTokenizer

            self.tokenizer = RobertaTokenizer.from_pretrained(str(self.folder / self.cfg.text_dir))
            self._graphs: _Graphs | None = _Graphs(
                onnx_dir(model_dir, clap.MODEL_NAME), self.GRAPHS, device_type(device)
            )
            self.model = None
        else:
            _torch_threads()
            self.model, self.tokenizer, self.cfg = clap.load_torch_model(self.folder)
            self._graphs = None
        self.info = EncoderInfo(
            clap.MODEL_NAME, folder.weights, identity, runtime, self.cfg.joint_dim,
            self._graphs.provider if self._graphs else "torch cpu",
        )  # fmt: skip

    @property
    def dim(self) -> int:
        return self.cfg.joint_dim

    def embed_windows(self, windows: np.ndarray) -> np.ndarray:
        """(W, clip_samples) -> (W, dim)."""
        outs = []
        for i in range(0, len(windows), _BATCH):
            batch = np.ascontiguousarray(windows[i : i + _BATCH], dtype=np.float32)
            outs.append(self._run("audio", {"waveform": batch}))
        return np.concatenate(outs)

    def embed_audio(self, waveform_48k: np.ndarray, max_windows: int = 12) -> np.ndarray:
        """One piece -> one unit vector: the mean of its 10 s window embeddings, renormalised."""
        emb = self.embed_windows(clap.audio_windows(waveform_48k, self.cfg, max_windows))
        mean = emb.mean(axis=0)
        return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)

    def embed_text(self, texts: list[str]) -> np.ndarray:
        feeds = clap.tokenize(self.tokenizer, texts, self.cfg)
        return self._run("text", feeds)

    def _run(self, graph: str, feeds: dict[str, np.ndarray]) -> np.ndarray:
        if self._graphs is not None:
            return self._graphs.run(graph, feeds)
        import torch

        with self._lock, torch.inference_mode():
            if graph == "audio":
                out = self.model.embed_audio(torch.from_numpy(feeds["waveform"]))
            else:
                out = self.model.embed_text(
                    torch.from_numpy(feeds["input_ids"]), torch.from_numpy(feeds["attention_mask"])
                )
        return out.float().numpy()


class ClipEncoder:
    """CLIP image and text embeddings (unit vectors, float32)."""

    GRAPHS = ("image", "text")

    def __init__(
        self, model_dir: Path, runtime: Runtime | Literal["auto"] = "auto", device: str = "auto"
    ) -> None:
        from transformers import CLIPConfig, CLIPTokenizer

        folder = weights.resolve(clip.MODEL_NAME, model_dir)
        self.folder = folder.path
        identity = model_identity(folder.path)
        if runtime == "auto":
            runtime = (
                "onnx"
                if _usable_onnx(model_dir, clip.MODEL_NAME, identity, self.GRAPHS)
                else "torch"
            )
        elif runtime == "onnx" and not _usable_onnx(
            model_dir, clip.MODEL_NAME, identity, self.GRAPHS
        ):
            raise WeightsError(
                "no ONNX export of clip for these weights; run `vmb models export-onnx`"
            )
        self._lock = threading.Lock()
        if runtime == "onnx":
            config = CLIPConfig.from_pretrained(str(self.folder))
            self.tokenizer = CLIPTokenizer.from_pretrained(str(self.folder))
            self.prep = clip.preprocessing(self.folder, config)
            self._graphs: _Graphs | None = _Graphs(
                onnx_dir(model_dir, clip.MODEL_NAME), self.GRAPHS, device_type(device)
            )
            self.model = None
            dim = int(config.projection_dim)
        else:
            _torch_threads()
            self.model, self.tokenizer, self.prep = clip.load_torch_model(self.folder)
            self._graphs = None
            dim = int(self.model.config.projection_dim)
        provider = self._graphs.provider if self._graphs else "torch cpu"
        self.info = EncoderInfo(clip.MODEL_NAME, folder.weights, identity, runtime, dim, provider)

    @property
    def dim(self) -> int:
        return self.info.dim

    def embed_images(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, dim)."""
        if len(frames) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        outs = []
        for i in range(0, len(frames), _BATCH):
            pixels = clip.pixel_values(frames[i : i + _BATCH], self.prep)
            outs.append(self._run("image", {"pixel_values": pixels}))
        return np.concatenate(outs)

    def embed_text(self, texts: list[str]) -> np.ndarray:
        return self._run("text", clip.tokenize(self.tokenizer, texts, self.prep["max_tokens"]))

    def _run(self, graph: str, feeds: dict[str, np.ndarray]) -> np.ndarray:
        if self._graphs is not None:
            return self._graphs.run(graph, feeds)
        import torch

        with self._lock, torch.inference_mode():
            if graph == "image":
                out = self.model.embed_images(torch.from_numpy(feeds["pixel_values"]))
            else:
                out = self.model.embed_text(
                    torch.from_numpy(feeds["input_ids"]), torch.from_numpy(feeds["attention_mask"])
                )
        return out.float().numpy()


# ---------------------------------------------------------------------------------------------
# ONNX export (`vmb models export-onnx`).


def _export(
    module: Any, args: tuple[Any, ...], path: Path, inputs: list[str], dynamic_batch: bool = True
) -> None:
    import torch

    dynamic = {name: {0: "batch"} for name in [*inputs, "embedding"]} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python-side shape checks
        torch.onnx.export(
            module, args, str(path), input_names=inputs, output_names=["embedding"],
            dynamic_axes=dynamic, opset_version=ONNX_OPSET, dynamo=False,
        )  # fmt: skip


def export_onnx(model_dir: Path, names: list[str] | None = None) -> list[Path]:
    """Export the installed CLAP and CLIP encoders to ONNX; returns the folders written.
    Models that are not installed are skipped unless named explicitly."""
    import torch

    todo = names or [n for n in (clap.MODEL_NAME, clip.MODEL_NAME) if (model_dir / n).is_dir()]
    written = []
    for name in todo:
        folder = weights.resolve(name, model_dir).path
        staging = model_dir / "onnx" / f".{name}.staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        with torch.inference_mode(False), torch.no_grad():
            if name == clap.MODEL_NAME:
                model, tokenizer, cfg = clap.load_torch_model(folder)
                tokens = clap.tokenize(tokenizer, ["a calm piano piece", "fast rock"], cfg)
                # HTSAT's window_reverse turns the batch size into a constant while tracing:
                # the audio graph takes one window per call (the encoder loops).
                wave = torch.zeros(1, cfg.clip_samples).uniform_(-0.5, 0.5)
                _export(_Call(model, "embed_audio"), (wave,), staging / "audio.onnx", ["waveform"],
                        dynamic_batch=False)  # fmt: skip
            elif name == clip.MODEL_NAME:
                model, tokenizer, prep = clip.load_torch_model(folder)
                tokens = clip.tokenize(
                    tokenizer, ["a city at night", "a beach"], prep["max_tokens"]
                )
                size = prep["size"]
                pixels = torch.randn(2, 3, size, size)
                _export(
                    _Call(model, "embed_images"),
                    (pixels,),
                    staging / "image.onnx",
                    ["pixel_values"],
                )
            else:
                raise WeightsError(f"{name} has no ONNX export")
            ids = torch.from_numpy(tokens["input_ids"])
            mask = torch.from_numpy(tokens["attention_mask"])
            _export(_Call(model, "embed_text"), (ids, mask), staging / "text.onnx",
                    ["input_ids", "attention_mask"])  # fmt: skip
        meta = {"name": name, "identity": model_identity(folder), "opset": ONNX_OPSET,
                "torch": torch.__version__}  # fmt: skip
        (staging / EXPORT_FILE).write_text(json.dumps(meta, indent=2))
        final = onnx_dir(model_dir, name)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(staging, final)
        written.append(final)
    return written


def _call_module() -> type:
    from torch import nn

    class Call(nn.Module):
        """Expose one method of a model as forward(), for torch.onnx.export."""

        def __init__(self, model: Any, method: str) -> None:
            super().__init__()
            self.model = model
            self.method = method

        def forward(self, *args: Any) -> Any:
            return getattr(self.model, self.method)(*args)

    return Call


def _Call(model: Any, method: str) -> Any:  # noqa: N802 - reads as a class at call sites
    return _call_module()(model, method)
