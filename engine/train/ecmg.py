"""Train the Music ControlFormer + Stylization Module on a frozen Stable Audio Open.

The paper's recipe: the base model is frozen; only the new modules learn, with the
v-objective SAO was trained with, AdamW (lr 1e-6, weight decay 0.001), InverseLR, and 16-bit
mixed precision on a GPU (fp32 on the CPU). Gradients are accumulated over ``grad_accum``
micro-batches per optimizer step. Text and CLAP embedding are dropped together with
probability ``cfg_dropout`` (the null condition classifier-free guidance uses at inference).

Data: a JSONL file, one record per line (relative paths from the file's folder)::

    {"audio": "music/a.flac", "reference": "music/b.flac", "description": "A calm ...",
     "attribute": "tempo: slow; genre: ...", "targeted_embedding": [CLAP joint_dim floats]}

`vmb dataset ecmg` writes these records from a tagged manifest and the music library
(engine.train.ecmg_data).

``targeted_embedding_path`` (a .npy file) may replace ``targeted_embedding``; ``meta`` is kept
for provenance. Unknown keys and missing files are errors naming the line.

Output folder: ``log.jsonl`` (one line per optimizer step), ``checkpoints/step-NNNNNNN/``
(adapters + ``optimizer.safetensors`` + ``trainer.json``, for resume) and ``adapters/``: a
complete ``vmb-ecmg`` model folder.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bridge.errors import InvalidRequest, MediaError, WeightsError
from engine import weights
from engine.generate.full.audio import load_audio, loop_to
from engine.generate.full.availability import pick_device
from engine.generate.full.ecmg import DEFAULT_CONTROL_DEPTH, ECMG
from engine.generate.full.sao import SAO, load_sao
from engine.types import ProgressFn, no_progress

ADAPTERS_NAME = "vmb-ecmg"
_RECORD_KEYS = {
    "audio",
    "reference",
    "description",
    "attribute",
    "targeted_embedding",
    "targeted_embedding_path",
    "meta",
}


@dataclass(frozen=True)
class ECMGTrainConfig:
    records: Path
    out: Path
    model_dir: Path
    model: str = "sao-1.0"
    text_encoder: str = "t5-base"
    steps: int = 1000  # optimizer steps
    batch_size: int = 1
    grad_accum: int = 4
    lr: float = 1e-6
    weight_decay: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    inv_gamma: float = 1e6  # InverseLR as SAT configures SAO: (1 + step / inv_gamma) ** -power
    power: float = 0.5
    warmup: float = 0.99  # ... times (1 - warmup ** (step + 1))
    cfg_dropout: float = 0.1
    control_depth: int = DEFAULT_CONTROL_DEPTH
    init_adapters: Path | None = None  # start from an existing vmb-ecmg folder
    clip_seconds: float | None = None  # training crop (default: the model window)
    save_every: int = 500
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto (bf16/fp16 on GPU, fp32 on CPU) | fp32 | bf16 | fp16
    resume: bool = False

    def to_json(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ECMGRecord:
    line: int
    audio: Path
    reference: Path
    description: str
    attribute: str
    embedding: tuple[float, ...]


@dataclass(frozen=True)
class ECMGTrainResult:
    out: Path
    adapters: Path
    steps: int
    losses: tuple[float, ...]
    weights: str


# ---- data ----


def _parse_record(raw: str, line: int, base: Path, clap_dim: int) -> ECMGRecord:
    where = f"{base}: line {line}"
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidRequest(f"{where}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"{where}: a record must be a JSON object")
    unknown = sorted(set(data) - _RECORD_KEYS)
    if unknown:
        raise InvalidRequest(f"{where}: unknown keys {', '.join(unknown)}")
    for key in ("audio", "reference", "description", "attribute"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise InvalidRequest(f"{where}: {key!r} must be a non-empty string")
    paths = {}
    for key in ("audio", "reference"):
        p = Path(data[key]).expanduser()
        p = p if p.is_absolute() else base.parent / p
        if not p.is_file():
            raise InvalidRequest(f"{where}: {key} file {p} does not exist")
        paths[key] = p
    if ("targeted_embedding" in data) == ("targeted_embedding_path" in data):
        raise InvalidRequest(f"{where}: give targeted_embedding or targeted_embedding_path")
    if "targeted_embedding" in data:
        emb = np.asarray(data["targeted_embedding"], dtype=np.float32)
    else:
        p = Path(data["targeted_embedding_path"]).expanduser()
        p = p if p.is_absolute() else base.parent / p
        try:
            emb = np.load(p, allow_pickle=False).astype(np.float32)
        except (OSError, ValueError) as exc:
            raise InvalidRequest(f"{where}: cannot read {p}: {exc}") from None
    emb = emb.reshape(-1)
    if emb.shape != (clap_dim,) or not np.isfinite(emb).all():
        raise InvalidRequest(f"{where}: the targeted embedding must be {clap_dim} finite values")
    return ECMGRecord(
        line=line,
        audio=paths["audio"],
        reference=paths["reference"],
        description=data["description"].strip(),
        attribute=data["attribute"].strip(),
        embedding=tuple(float(v) for v in emb),
    )


def _clap_dim(model_dir: Path) -> int:
    """The style width: the installed CLAP's joint space (its config), else the full CLAP's."""
    from engine.retrieve.full.encoders import clap

    try:
        folder = weights.resolve(clap.MODEL_NAME, model_dir)
    except WeightsError:
        return clap.ClapConfig().joint_dim
    return clap.read_config(folder.path).joint_dim


def read_records(path: Path, clap_dim: int) -> list[ECMGRecord]:
    if not path.is_file():
        raise InvalidRequest(f"records file {path} does not exist")
    out = []
    for i, raw in enumerate(path.read_text().splitlines(), start=1):
        if raw.strip():
            out.append(_parse_record(raw, i, path, clap_dim))
    if not out:
        raise InvalidRequest(f"{path} has no records")
    return out


@dataclass
class _Example:
    target: torch.Tensor  # [C, L] VAE latent of the target music
    control: torch.Tensor  # [C, L] VAE latent of the broad reference (looped)
    style: torch.Tensor  # [clap_dim]
    prompt: str
    seconds_total: float


class _Examples:
    """Records encoded once (VAE posterior mean) and kept in memory."""

    def __init__(self, records: list[ECMGRecord], ecmg: ECMG, clip_samples: int) -> None:
        self.records = records
        self.ecmg = ecmg
        self.clip = clip_samples
        self.cache: dict[int, _Example] = {}

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> _Example:
        if i not in self.cache:
            self.cache[i] = self._encode(self.records[i])
        return self.cache[i]

    def _encode(self, r: ECMGRecord) -> _Example:
        sao = self.ecmg.sao
        sr, ch = sao.sample_rate, sao.audio_channels
        try:
            target = load_audio(str(r.audio), sr, ch, max_samples=self.clip)
            reference = loop_to(
                load_audio(str(r.reference), sr, ch, max_samples=self.clip), self.clip
            )
        except MediaError as exc:
            raise InvalidRequest(f"record on line {r.line}: {exc.message}") from None
        seconds = target.shape[-1] / sr
        target = np.pad(target, ((0, 0), (0, self.clip - target.shape[-1])))  # SAO pads silence
        both = torch.from_numpy(np.stack([target, reference]))
        latents = self.ecmg.encode(both).float()
        return _Example(
            target=latents[0],
            control=latents[1],
            style=torch.tensor(r.embedding, dtype=torch.float32),
            prompt=f"{r.description.rstrip('.')}. {r.attribute}",
            seconds_total=seconds,
        )


# ---- schedule, precision, checkpoints ----


def inverse_lr_factor(step: int, cfg: ECMGTrainConfig) -> float:
    """SAT's InverseLR: warm up as 1 - warmup^(step+1), then decay as (1 + step/gamma)^-power."""
    warm = 1.0 - cfg.warmup ** (step + 1)
    return warm * (1.0 + step / cfg.inv_gamma) ** -cfg.power


def _amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "bf16" or (precision == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


def _step_generator(seed: int, step: int, micro: int) -> torch.Generator:
    """Randomness of one micro-batch from (seed, step, micro) alone: a resumed run replays
    exactly what an uninterrupted run would have done."""
    state = np.random.SeedSequence([seed & 0xFFFF_FFFF, step, micro]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def _save_optimizer(opt: torch.optim.Optimizer, folder: Path) -> list[dict[str, Any]]:
    from safetensors.torch import save_file

    sd = opt.state_dict()
    tensors = {
        f"{idx}.{name}": (v if torch.is_tensor(v) else torch.tensor(v)).detach().cpu().contiguous()
        for idx, state in sd["state"].items()
        for name, v in state.items()
    }
    save_file(tensors, str(folder / "optimizer.safetensors"))
    return sd["param_groups"]


def _load_optimizer(opt: torch.optim.Optimizer, folder: Path, groups: list[dict[str, Any]]) -> None:
    from safetensors.torch import load_file

    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in load_file(str(folder / "optimizer.safetensors")).items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": groups})


def _latest_checkpoint(out: Path) -> Path | None:
    found = sorted((out / "checkpoints").glob("step-*"))
    return found[-1] if found else None


def _save_checkpoint(
    out: Path,
    step: int,
    ecmg: ECMG,
    opt: torch.optim.Optimizer,
    scaler: Any,
    cfg: ECMGTrainConfig,
    losses: list[float],
) -> Path:
    final = out / "checkpoints" / f"step-{step:07d}"
    staging = final.with_name(final.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    ecmg.save_adapters(staging)
    groups = _save_optimizer(opt, staging)
    trainer = {
        "step": step,
        "config": cfg.to_json(),
        "param_groups": groups,
        "losses": losses,
        "scaler": scaler.state_dict() if scaler is not None else None,
    }
    (staging / "trainer.json").write_text(json.dumps(trainer, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    return final


# ---- training ----


def _load_base(cfg: ECMGTrainConfig) -> tuple[SAO, str]:
    base = weights.resolve(cfg.model, cfg.model_dir)
    text = weights.resolve(cfg.text_encoder, cfg.model_dir)
    kind = "random" if "random" in (base.weights, text.weights) else "real"
    return load_sao(base.path, text.path), kind


def _adapters_from(sao: SAO, checkpoint: Path | None, cfg: ECMGTrainConfig) -> ECMG:
    """A resumed run's checkpoint, else the given initial adapters, else fresh ones."""
    if checkpoint is not None:
        return ECMG.load(sao, checkpoint)
    if cfg.init_adapters is not None:
        return ECMG.load(sao, cfg.init_adapters)
    return ECMG.fresh(sao, cfg.control_depth, clap_dim=_clap_dim(cfg.model_dir))


def _resume(opt: Any, scaler: Any, checkpoint: Path | None) -> tuple[int, list[float]]:
    """(start step, losses so far); the optimiser and scaler state come from the checkpoint."""
    if checkpoint is None:
        return 0, []
    trainer = json.loads((checkpoint / "trainer.json").read_text())
    _load_optimizer(opt, checkpoint, trainer["param_groups"])
    if scaler is not None and trainer.get("scaler"):
        scaler.load_state_dict(trainer["scaler"])
    return int(trainer["step"]), list(trainer["losses"])


def _publish_adapters(ecmg: ECMG, out: Path, kind: str) -> Path:
    """Save beside the final folder, then swap it in: never half a set of adapters."""
    adapters = out / "adapters"
    staging = out / ".adapters.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    ecmg.save_adapters(staging)
    weights.finalize_folder(staging, ADAPTERS_NAME, kind)  # type: ignore[arg-type]
    shutil.rmtree(adapters, ignore_errors=True)
    staging.rename(adapters)
    return adapters


def train_ecmg(cfg: ECMGTrainConfig, progress: ProgressFn = no_progress) -> ECMGTrainResult:
    """Train (or resume) the adapters; returns the losses and the adapter folder."""
    if cfg.steps < 1 or cfg.batch_size < 1 or cfg.grad_accum < 1:
        raise InvalidRequest("steps, batch_size and grad_accum must be >= 1")
    device = pick_device(cfg.device)
    amp = _amp_dtype(cfg.precision, device)
    sao, kind = _load_base(cfg)

    checkpoint = _latest_checkpoint(cfg.out) if cfg.resume else None
    ecmg = _adapters_from(sao, checkpoint, cfg)
    records = read_records(cfg.records, ecmg.stylization.config.clap_dim)
    ecmg.to(device, torch.float32)  # fp32 master weights; autocast does the 16-bit math
    sao.model.requires_grad_(False)
    ecmg.adapters.requires_grad_(True).train()
    params = [p for p in ecmg.adapters.parameters() if p.requires_grad]

    data = examples_for(ecmg, records, cfg.clip_seconds)

    opt = torch.optim.AdamW(
        params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay
    )
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
    start, losses = _resume(opt, scaler, checkpoint)

    cfg.out.mkdir(parents=True, exist_ok=True)
    log = (cfg.out / "log.jsonl").open("a")
    try:
        for step in range(start, cfg.steps):
            for group in opt.param_groups:
                group["lr"] = cfg.lr * inverse_lr_factor(step, cfg)
            total = 0.0
            for micro in range(cfg.grad_accum):
                loss = _micro_step(ecmg, data, cfg, step, micro, amp, device)
                scaled = loss / cfg.grad_accum
                (scaler.scale(scaled) if scaler is not None else scaled).backward()
                total += float(loss.detach())
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(total / cfg.grad_accum)
            log.write(
                json.dumps({"step": step + 1, "loss": losses[-1], "lr": opt.param_groups[0]["lr"]})
                + "\n"
            )
            log.flush()
            progress("train", step + 1, cfg.steps)
            if (step + 1) % cfg.save_every == 0 or step + 1 == cfg.steps:
                _save_checkpoint(cfg.out, step + 1, ecmg, opt, scaler, cfg, losses)
    finally:
        log.close()

    adapters = _publish_adapters(ecmg, cfg.out, kind)
    ecmg.close()
    return ECMGTrainResult(cfg.out, adapters, cfg.steps, tuple(losses), kind)


def _micro_step(
    ecmg: ECMG,
    data: _Examples,
    cfg: ECMGTrainConfig,
    step: int,
    micro: int,
    amp: torch.dtype | None,
    device: torch.device,
) -> torch.Tensor:
    g = _step_generator(cfg.seed, step, micro)
    idx = torch.randint(len(data), (cfg.batch_size,), generator=g).tolist()
    batch = [data[i] for i in idx]
    target = torch.stack([b.target for b in batch]).to(device)
    control = torch.stack([b.control for b in batch]).to(device)
    style = torch.stack([b.style for b in batch]).to(device)
    t = torch.rand(len(batch), generator=g).to(device)
    noise = torch.randn(target.shape, generator=g).to(device)
    drop = (torch.rand(len(batch), generator=g) < cfg.cfg_dropout).to(device)
    cond = ecmg.conditioning([b.prompt for b in batch], 0.0, [b.seconds_total for b in batch])
    cross = cond["cross_attn_cond"]
    cond["cross_attn_cond"] = torch.where(drop[:, None, None], torch.zeros_like(cross), cross)
    style = torch.where(drop[:, None], torch.zeros_like(style), style)
    with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
        return ecmg.v_loss(target, cond, control, style, t, noise)


def install_adapters(adapters: Path, model_dir: Path) -> Path:
    """Copy a finished run's adapters into the model folder as ``vmb-ecmg``."""
    if not (adapters / weights.MARKER).is_file():
        raise WeightsError(f"{adapters} is not a finished adapter folder")
    dest = model_dir / ADAPTERS_NAME
    staging = model_dir / f".{ADAPTERS_NAME}.install"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(adapters, staging)
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    return dest


def evaluation_loss(ecmg: ECMG, data: _Examples, seed: int, draws: int = 4) -> float:
    """Mean v-loss over fixed (noise, t) draws, without dropout: a comparable number before
    and after training."""
    device = ecmg.device
    total = 0.0
    with torch.no_grad():
        for d in range(draws):
            g = _step_generator(seed, 10**6 + d, 0)
            for i in range(len(data)):
                b = data[i]
                t = torch.rand(1, generator=g).to(device)
                noise = torch.randn((1, *b.target.shape), generator=g).to(device)
                cond = ecmg.conditioning([b.prompt], 0.0, b.seconds_total)
                loss = ecmg.v_loss(
                    b.target[None].to(device),
                    cond,
                    b.control[None].to(device),
                    b.style[None].to(device),
                    t,
                    noise,
                )
                total += float(loss)
    return total / (draws * len(data))


def examples_for(
    ecmg: ECMG, records: list[ECMGRecord], clip_seconds: float | None = None
) -> _Examples:
    """Records as training examples, cropped to ``clip_seconds`` (default: the model window)
    in whole latent frames."""
    sao = ecmg.sao
    clip = sao.sample_size if clip_seconds is None else int(clip_seconds * sao.sample_rate)
    ratio = sao.downsampling_ratio
    return _Examples(records, ecmg, max(ratio, min(sao.sample_size, clip) // ratio * ratio))


__all__ = [
    "ECMGRecord",
    "ECMGTrainConfig",
    "ECMGTrainResult",
    "evaluation_loss",
    "examples_for",
    "inverse_lr_factor",
    "install_adapters",
    "read_records",
    "train_ecmg",
]
