"""Fine-tune MMDM: a rank-16 LoRA on InternVL's language model, video frames -> description.

The paper's recipe: AdamW, lr 1e-6 with cosine decay, bf16 (on a GPU), 10 frames per video.
One example per forward pass (frame counts differ), gradients accumulated over
``grad_accum`` examples per optimizer step. The loss covers the answer tokens only.

Data: a JSONL file, one example per line::

    {"video": "clips/a.mp4", "start": 12.0, "end": 42.0, "description": "A calm ..."}
    {"frames": "frames/b/", "description": "..."}      # a folder of pictures, in name order
    {"image": "stills/c.jpg", "description": "..."}

plus optional "audio", "tags" and "meta" (provenance, written by `vmb dataset targets`).
Relative paths are read from the JSONL's folder. Unknown keys, bad values and missing
files are reported with their line number; ``on_error="skip"`` skips such lines instead.

Output folder: ``log.jsonl`` (one line per step / validation), ``checkpoints/step-NNNNNN/``
(adapter + optimizer + scheduler, for --resume), and ``adapter/``: the finished
``vmb-mmdm-lora`` model folder (peft files + vmb-mmdm.json + vmb-model.json).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from bridge.errors import InvalidRequest, MediaError, WeightsError
from engine import weights
from engine.describe.full import internvl, lora
from engine.describe.full.parse import normalise_text
from engine.train.jsonl import json_object, read_jsonl
from engine.types import ProgressFn, no_progress

ADAPTER_NAME = "vmb-mmdm-lora"
_EXAMPLE_KEYS = {"video", "start", "end", "frames", "image", "description", "audio", "tags", "meta"}


@dataclass(frozen=True)
class Example:
    """One training pair: the visual side (exactly one of video / frames / image) + target."""

    description: str
    line: int
    video: Path | None = None
    start_s: float | None = None
    end_s: float | None = None
    frames_dir: Path | None = None
    image: Path | None = None

    @property
    def source(self) -> internvl.Source:
        return "image" if self.image is not None else "video"


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on; saved in every checkpoint and compared on resume."""

    train: Path
    out: Path
    val: Path | None = None
    model_dir: Path = Path("models")
    base: str = "internvl"
    rank: int = lora.LORA_RANK
    alpha: int = lora.LORA_ALPHA
    dropout: float = lora.LORA_DROPOUT
    lr: float = 1e-6
    weight_decay: float = 0.0
    warmup_steps: int = 0
    epochs: float = 1.0
    max_steps: int | None = None
    grad_accum: int = 8
    max_grad_norm: float = 1.0
    eval_every: int = 0  # 0: validate at the end only
    save_every: int = 100
    keep_checkpoints: int = 2
    seed: int = 0
    device: str = "auto"
    on_error: Literal["fail", "skip"] = "fail"
    gradient_checkpointing: bool = False
    resume: bool = False

    # settings that may change between a run and its resumption
    _RESUMABLE = (
        "out",
        "resume",
        "max_steps",
        "epochs",
        "eval_every",
        "save_every",
        "keep_checkpoints",
        "device",
        "on_error",
        "val",
        "model_dir",
    )

    def to_json(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class TrainResult:
    adapter_dir: Path
    steps: int
    examples: int
    skipped: tuple[str, ...]
    train_losses: tuple[float, ...]  # mean loss of each optimizer step run in this call
    val_loss: float | None
    seconds: float
    device: str
    base_weights: str
    log: list[dict[str, Any]] = field(default_factory=list)


# ----------------------------------------------------------------------------- data


def _where(path: Path, line: int) -> str:
    return f"{path}:{line}"


def _parse_example(raw: str, line: int, path: Path) -> Example:
    where = _where(path, line)
    data = json_object(raw, where, _EXAMPLE_KEYS)
    visual = [k for k in ("video", "frames", "image") if k in data]
    if len(visual) != 1:
        raise InvalidRequest(f"{where}: give exactly one of video, frames, image")
    if not isinstance(data.get("description"), str):
        raise InvalidRequest(f"{where}: 'description' must be text")
    try:
        description = normalise_text(data["description"])
    except InvalidRequest as exc:
        raise InvalidRequest(f"{where}: {exc.message}") from None
    kind = visual[0]
    if not isinstance(data[kind], str) or not data[kind]:
        raise InvalidRequest(f"{where}: '{kind}' must be a path")
    target = (path.parent / data[kind]).expanduser()
    if kind != "video" and ("start" in data or "end" in data):
        raise InvalidRequest(f"{where}: start/end go with a video only")
    if kind == "frames" and not target.is_dir():
        raise InvalidRequest(f"{where}: frames folder {target} does not exist")
    if kind != "frames" and not target.is_file():
        raise InvalidRequest(f"{where}: {kind} file {target} does not exist")
    start = data.get("start")
    end = data.get("end")
    for name, value in (("start", start), ("end", end)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InvalidRequest(f"{where}: '{name}' must be a number of seconds")
    if start is not None and start < 0:
        raise InvalidRequest(f"{where}: start must be >= 0")
    if start is not None and end is not None and end <= start:
        raise InvalidRequest(f"{where}: end ({end}) must be after start ({start})")
    return Example(
        description=description,
        line=line,
        video=target if kind == "video" else None,
        start_s=float(start) if start is not None else None,
        end_s=float(end) if end is not None else None,
        frames_dir=target if kind == "frames" else None,
        image=target if kind == "image" else None,
    )


def read_examples(
    path: Path, on_error: Literal["fail", "skip"] = "fail"
) -> tuple[list[Example], list[str]]:
    """Examples of a JSONL file and the messages of the lines skipped (on_error="skip")."""
    examples, skipped = read_jsonl(
        path, lambda raw, n: _parse_example(raw, n, path), on_error, "dataset"
    )
    if not examples:
        raise InvalidRequest(f"dataset {path} has no usable examples")
    return examples, skipped


def video_frames(
    path: Path, start_s: float | None, end_s: float | None, count: int = internvl.NUM_FRAMES
) -> np.ndarray:
    """`count` frames at the centres of equal slices of [start, end) (whole file if open).

    Decoded by engine.media.visual_input, what the pipeline's describe stage receives (same
    sampling, same frame size): training shows the model the pictures of inference."""
    from engine import media

    frames = media.visual_input(path, start_s, end_s, n_frames=count).frames
    if frames.shape[0] == 0:
        raise MediaError(f"no frames decodable in {path}")
    return frames


def _picture(path: Path) -> np.ndarray:
    """One picture as the pipeline sees it (engine.media), checked to be a picture first."""
    from engine import media

    try:
        with Image.open(path) as img:
            img.verify()
    except FileNotFoundError:
        raise MediaError(f"picture {path} does not exist") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError(f"{path} is not a readable picture: {exc}") from None
    return media.visual_input(path).frames[0]


def example_frames(example: Example, count: int = internvl.NUM_FRAMES) -> np.ndarray:
    """The frames the model sees for an example, sampled as the describer samples them."""
    if example.image is not None:
        return _picture(example.image)[None]
    if example.frames_dir is not None:
        from engine.media import IMAGE_SUFFIXES

        files = sorted(
            p for p in example.frames_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise MediaError(f"no pictures in {example.frames_dir}")
        picked = [_picture(files[i]) for i in internvl.sample_indices(len(files), count)]
        h, w = picked[0].shape[:2]  # the model resizes each frame; stacking needs one size
        picked = [
            f if f.shape[:2] == (h, w) else np.asarray(Image.fromarray(f).resize((w, h)))
            for f in picked
        ]
        return np.stack(picked)
    assert example.video is not None
    return video_frames(example.video, example.start_s, example.end_s, count)


# ----------------------------------------------------------------------------- schedule


def cosine_lr(step: int, total: int, warmup: int) -> float:
    """Multiplier of the base lr: linear warm-up, then cosine decay to zero at `total`."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _order(n: int, seed: int, epoch: int) -> np.ndarray:
    """A fixed shuffle per epoch, so a resumed run sees the examples it would have seen."""
    return np.random.default_rng([seed, epoch]).permutation(n)


# ----------------------------------------------------------------------------- checkpoints


def _checkpoints(out: Path) -> list[Path]:
    root = out / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step-*") if (p / "trainer_state.pt").is_file())


def _save_checkpoint(
    mmdm: internvl.MMDM,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    cfg: TrainConfig,
    step: int,
) -> Path:
    folder = cfg.out / "checkpoints" / f"step-{step:06d}"
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    lora.save_adapter(mmdm, staging, training={"step": step})
    state = {
        "step": step,
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "config": cfg.to_json(),
    }
    torch.save(state, staging / "trainer_state.pt")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    for old in _checkpoints(cfg.out)[: -cfg.keep_checkpoints or None]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def _restore(
    mmdm: internvl.MMDM,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    cfg: TrainConfig,
) -> int:
    """Load the latest checkpoint into the (already LoRA-wrapped) model; returns its step."""
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    found = _checkpoints(cfg.out)
    if not found:
        return 0
    folder = found[-1]
    state = torch.load(folder / "trainer_state.pt", map_location="cpu", weights_only=True)
    saved, now = state["config"], cfg.to_json()
    changed = {
        k: (saved.get(k), v)
        for k, v in now.items()
        if k not in TrainConfig._RESUMABLE and saved.get(k) != v
    }
    if changed:
        raise InvalidRequest(
            f"checkpoint {folder} was made with other settings (saved, now): {changed}"
        )
    info = lora.read_adapter_info(folder)
    if info.base != mmdm.signature:
        raise WeightsError(f"checkpoint {folder} was made on another base model")
    result = set_peft_model_state_dict(
        mmdm.model, load_file(str(folder / "adapter_model.safetensors"))
    )
    if getattr(result, "unexpected_keys", None):
        raise WeightsError(f"checkpoint {folder} has unexpected keys {result.unexpected_keys[:3]}")
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    step = int(state["step"])
    schedule = sched.lr_lambdas[0]  # this run's schedule: max_steps may have grown since
    for group, base_lr in zip(opt.param_groups, sched.base_lrs, strict=True):
        group["lr"] = base_lr * schedule(step)
    return step


# ----------------------------------------------------------------------------- loop


def evaluate(mmdm: internvl.MMDM, examples: list[Example], autocast: Any) -> float:
    """Mean answer-token loss over examples, dropout off, no gradients."""
    mmdm.model.eval()
    losses = []
    with torch.no_grad():
        for ex in examples:
            batch = mmdm.encode(example_frames(ex), ex.source, ex.description)
            with autocast():
                losses.append(float(mmdm.loss(batch)))
    return float(np.mean(losses))


def _log(cfg: TrainConfig, record: dict[str, Any], log: list[dict[str, Any]]) -> None:
    log.append(record)
    with (cfg.out / "log.jsonl").open("a") as fh:
        fh.write(json.dumps(record) + "\n")


def _datasets(cfg: TrainConfig) -> tuple[list[Example], list[Example], list[str]]:
    """(training examples, validation examples, skipped lines of both)."""
    train_set, skipped = read_examples(cfg.train, cfg.on_error)
    val_set: list[Example] = []
    if cfg.val is not None:
        val_set, val_skipped = read_examples(cfg.val, cfg.on_error)
        skipped += val_skipped
    return train_set, val_set, skipped


def _start(mmdm: internvl.MMDM, opt: Any, sched: Any, cfg: TrainConfig) -> int:
    """The step to start from: a resumed run's last checkpoint, else 0 in an empty --out."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    if not cfg.resume:
        if _checkpoints(cfg.out):
            raise InvalidRequest(f"{cfg.out} holds checkpoints; pass --resume or another --out")
        (cfg.out / "log.jsonl").unlink(missing_ok=True)
    return _restore(mmdm, opt, sched, cfg) if cfg.resume else 0


def _trainable(base_dir: Path, cfg: TrainConfig, total: int) -> tuple[internvl.MMDM, Any, Any, Any]:
    """The base with a fresh adapter, its trainable parameters, AdamW and the cosine schedule."""
    device = internvl.pick_device(cfg.device)
    mmdm = internvl.load_base(base_dir, device, internvl.pick_dtype(device))
    lora.attach_lora(mmdm, cfg.rank, cfg.alpha, cfg.dropout, seed=cfg.seed)
    if cfg.gradient_checkpointing:
        mmdm.model.enable_input_require_grads()
        mmdm.model.activation_checkpointing_enable({"use_reentrant": False})
    params = [p for p in mmdm.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_lr(s, total, cfg.warmup_steps))
    return mmdm, params, opt, sched


def _step(
    mmdm: internvl.MMDM,
    train_set: list[Example],
    cfg: TrainConfig,
    step: int,
    autocast: Callable[[], Any],
    params: list[torch.nn.Parameter],
    opt: torch.optim.Optimizer,
) -> float:
    """One optimiser step over grad_accum examples (seeded per step, so a resumed run draws
    the same examples and dropout); returns its mean loss."""
    n = len(train_set)
    mmdm.model.train()
    opt.zero_grad(set_to_none=True)
    step_loss = 0.0
    with internvl.seeded(mmdm.device, cfg.seed * 1_000_003 + step):  # dropout: resumable
        for micro in range(cfg.grad_accum):
            k = step * cfg.grad_accum + micro
            ex = train_set[int(_order(n, cfg.seed, k // n)[k % n])]
            batch = mmdm.encode(example_frames(ex), ex.source, ex.description)
            with autocast():
                loss = mmdm.loss(batch)
            (loss / cfg.grad_accum).backward()
            step_loss += float(loss.detach()) / cfg.grad_accum
    if cfg.max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
    opt.step()
    return step_loss


def _publish_adapter(
    mmdm: internvl.MMDM, out: Path, training: dict[str, Any], base_weights: str
) -> Path:
    """Save the adapter beside its final place, then swap it in: never half an adapter."""
    adapter_dir = out / "adapter"
    staging = out / ".adapter.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    lora.save_adapter(mmdm, staging, training=training)
    weights.finalize_folder(staging, ADAPTER_NAME, "random" if base_weights == "random" else "real")
    shutil.rmtree(adapter_dir, ignore_errors=True)
    staging.rename(adapter_dir)
    return adapter_dir


def train_mmdm(cfg: TrainConfig, progress: ProgressFn = no_progress) -> TrainResult:
    """Train (or resume) a LoRA adapter; returns where the finished adapter folder is."""
    t0 = time.perf_counter()
    if cfg.rank < 1 or cfg.grad_accum < 1 or cfg.lr <= 0:
        raise InvalidRequest("rank and grad_accum must be >= 1 and lr > 0")
    train_set, val_set, skipped = _datasets(cfg)
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * len(train_set) / cfg.grad_accum))

    base = weights.resolve(cfg.base, cfg.model_dir)
    mmdm, params, opt, sched = _trainable(base.path, cfg, total)
    device = mmdm.device

    def autocast() -> Any:
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    start = _start(mmdm, opt, sched, cfg)
    log: list[dict[str, Any]] = []
    losses: list[float] = []
    n = len(train_set)
    progress("train", start, total)
    for step in range(start, total):
        step_loss = _step(mmdm, train_set, cfg, step, autocast, params, opt)
        sched.step()
        losses.append(step_loss)
        _log(cfg, {"step": step + 1, "loss": step_loss, "lr": sched.get_last_lr()[0]}, log)
        done = step + 1
        if val_set and cfg.eval_every and done % cfg.eval_every == 0 and done < total:
            _log(cfg, {"step": done, "val_loss": evaluate(mmdm, val_set, autocast)}, log)
        if cfg.save_every and done % cfg.save_every == 0 and done < total:
            _save_checkpoint(mmdm, opt, sched, cfg, done)
        progress("train", done, total)

    val_loss = evaluate(mmdm, val_set, autocast) if val_set else None
    if val_loss is not None:
        _log(cfg, {"step": total, "val_loss": val_loss}, log)
    _save_checkpoint(mmdm, opt, sched, cfg, total)
    training = {
        "examples": n,
        "steps": total,
        "lr": cfg.lr,
        "grad_accum": cfg.grad_accum,
        "final_train_loss": losses[-1] if losses else None,
        "val_loss": val_loss,
        "base_weights": base.weights,
        "seed": cfg.seed,
    }
    adapter_dir = _publish_adapter(mmdm, cfg.out, training, base.weights)
    return TrainResult(
        adapter_dir=adapter_dir,
        steps=total,
        examples=n,
        skipped=tuple(skipped),
        train_losses=tuple(losses),
        val_loss=val_loss,
        seconds=time.perf_counter() - t0,
        device=device.type,
        base_weights=base.weights,
        log=log,
    )


def install_adapter(adapter_dir: Path, model_dir: Path) -> Path:
    """Copy a finished adapter folder to <model_dir>/vmb-mmdm-lora (replacing the old one)."""
    target = model_dir / ADAPTER_NAME
    staging = model_dir / f".{ADAPTER_NAME}.install"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(adapter_dir, staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target
