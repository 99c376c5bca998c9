"""Settings: frozen dataclasses read from ``<VMB_HOME>/config.toml`` plus the environment.

Unknown sections or keys are errors that name the key (a typo must never be silently
ignored). ``VMB_HOME`` moves config, data, jobs and outputs together; tests always set it.
Environment overrides: VMB_MODEL_DIR, VMB_BACKEND, VMB_PORT, VMB_JOB_KIND_MODULES (comma list),
VMB_CONFIG (another config file).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.discovery import default_home, run_dir
from bridge.errors import ConfigError


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port, remembered across restarts in run/port
    heartbeat_s: float = 1.0
    # Remote access (host other than loopback) needs CURVE: the server's secret key file
    # (written by `vmb engine keys`); clients then need the public key from discovery.
    curve_secret_key_file: str = ""
    gateway_port: int = 0  # host gateway (HTTP); 0: a free port
    gateway: bool = True


@dataclass(frozen=True)
class JobsConfig:
    max_attempts: int = 3  # runs of one job across daemon/worker deaths before it fails
    cancel_grace_s: float = 0.5  # cooperative cancel window before the worker is killed
    retention_days: float = 30.0  # `vmb jobs prune` default
    kind_modules: tuple[str, ...] = ()  # extra modules that register job kinds


@dataclass(frozen=True)
class ModelsConfig:
    model_dir: str = ""  # default: <home>/models
    device: str = "auto"  # auto | cuda | mps | cpu


@dataclass(frozen=True)
class PipelineConfig:
    backend: str = "auto"  # auto | draft | full
    max_cue_s: float = 600.0
    sample_rate: int = 44100
    top_k: int = 5


@dataclass(frozen=True)
class DraftConfig:
    soundfont: str = ""  # default: the first MIT General MIDI soundfont found
    library_dirs: tuple[str, ...] = ()  # extra folders of audio/MIDI for the draft library
    use_system_samples: bool = True  # Debian's sonic-pi-samples (CC0)
    loudness_lufs: float = -16.0
    true_peak_dbtp: float = -1.0  # ceiling after loudness normalisation
    layer_loops: bool = False  # layer a CC0 sonic-pi loop (stretched to the tempo) under grooves


@dataclass(frozen=True)
class GenerateConfig:
    """Full (neural) generation: SAO DiT + ControlFormer + Stylization, and its sampler."""

    model: str = "sao-1.0"  # model folder of the SAO base (model_config.json + safetensors)
    text_encoder: str = "t5-base"  # model folder of the T5 prompt encoder
    adapters: str = "vmb-ecmg"  # model folder of the ControlFormer + Stylization weights
    sampler: str = "dpmpp-3m-sde"  # dpmpp-3m-sde | dpmpp-2m-sde
    steps: int = 100
    cfg_scale: float = 7.0
    sigma_min: float = 0.03
    sigma_max: float = 1000.0
    rho: float = 1.0  # 1.0: log-linear sigma schedule
    dtype: str = "auto"  # auto (bf16/fp16 on GPU, fp32 on CPU) | fp32 | bf16 | fp16
    max_cue_s: float = 600.0  # longest cue; longer than one window uses windowed continuation
    overlap_s: float = 5.0  # continuation context and crossfade between windows
    crop_to_cue: bool = False  # denoise only the cue's latents instead of the model's window
    offload: bool = False  # keep T5 and the VAE on the CPU except while they run
    oom_retry_offload: bool = True  # on GPU out-of-memory, retry once with offload


@dataclass(frozen=True)
class Settings:
    home: Path
    server: ServerConfig = field(default_factory=ServerConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    draft: DraftConfig = field(default_factory=DraftConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)

    @property
    def config_path(self) -> Path:
        return self.home / "config.toml"

    @property
    def run_dir(self) -> Path:
        return run_dir(self.home)

    @property
    def jobs_db(self) -> Path:
        return self.home / "jobs.sqlite"

    @property
    def outputs_dir(self) -> Path:
        return self.home / "outputs"

    @property
    def model_dir(self) -> Path:
        return (
            Path(self.models.model_dir).expanduser()
            if self.models.model_dir
            else (self.home / "models")
        )

    @property
    def library_dir(self) -> Path:
        return self.home / "library"


_SECTIONS = {f.name: f.type for f in dataclasses.fields(Settings) if f.name != "home"}


def _coerce(value: Any, typ: Any, where: str) -> Any:
    origin = typing.get_origin(typ)
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if origin is tuple:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"setting '{where}' must be a list of strings")
        return tuple(value)
    if origin in (types.UnionType, typing.Union):
        for t in typing.get_args(typ):
            if t is type(None) and value is None:
                return None
            try:
                return _coerce(value, t, where)
            except ConfigError:
                continue
        raise ConfigError(f"setting '{where}' has the wrong type")
    if isinstance(typ, type) and (
        not isinstance(value, typ) or (typ is not bool and isinstance(value, bool))
    ):
        raise ConfigError(
            f"setting '{where}' must be {typ.__name__}, got {type(value).__name__} {value!r}"
        )
    return value


def _build_section(cls: type, data: dict[str, Any], name: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"'{name}' must be a table of settings")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(
                f"unknown setting '{name}.{key}'; '{name}' has: {', '.join(sorted(known))}"
            )
    return cls(**{k: _coerce(v, hints[k], f"{name}.{k}") for k, v in data.items()})


def _env_overrides(raw: dict[str, dict[str, Any]]) -> None:
    env = os.environ
    if env.get("VMB_MODEL_DIR"):
        raw.setdefault("models", {})["model_dir"] = env["VMB_MODEL_DIR"]
    if env.get("VMB_BACKEND"):
        raw.setdefault("pipeline", {})["backend"] = env["VMB_BACKEND"]
    if env.get("VMB_PORT"):
        try:
            raw.setdefault("server", {})["port"] = int(env["VMB_PORT"])
        except ValueError:
            raise ConfigError(f"VMB_PORT must be a number, got {env['VMB_PORT']!r}") from None
    if env.get("VMB_JOB_KIND_MODULES"):
        mods = [m.strip() for m in env["VMB_JOB_KIND_MODULES"].split(",") if m.strip()]
        raw.setdefault("jobs", {})["kind_modules"] = mods


def settings_from_dict(home: Path, raw: dict[str, Any], source: str = "settings") -> Settings:
    sections: dict[str, Any] = {}
    for name, data in raw.items():
        if name not in _SECTIONS:
            raise ConfigError(
                f"unknown section '{name}' in {source}; sections: {', '.join(sorted(_SECTIONS))}"
            )
        cls = typing.get_type_hints(Settings)[name]
        sections[name] = _build_section(cls, data, name)
    settings = Settings(home=home, **sections)
    _validate(settings)
    return settings


def _validate(s: Settings) -> None:
    if s.pipeline.backend not in ("auto", "draft", "full"):
        raise ConfigError(
            f"pipeline.backend must be auto, draft or full, not {s.pipeline.backend!r}"
        )
    if s.models.device not in ("auto", "cuda", "mps", "cpu"):
        raise ConfigError(f"models.device must be auto, cuda, mps or cpu, not {s.models.device!r}")
    if not (0 <= s.server.port <= 65535):
        raise ConfigError(f"server.port {s.server.port} is not a TCP port")
    loopback = s.server.host in ("127.0.0.1", "localhost", "::1")
    if not loopback and not s.server.curve_secret_key_file:
        raise ConfigError(
            f"server.host {s.server.host!r} is not loopback: remote access needs CURVE keys "
            "(run `vmb engine keys` and set server.curve_secret_key_file)"
        )
    if s.jobs.max_attempts < 1 or s.jobs.cancel_grace_s < 0:
        raise ConfigError("jobs.max_attempts must be >= 1 and jobs.cancel_grace_s >= 0")


def load_settings(home: Path | None = None) -> Settings:
    home = (home or default_home()).expanduser().resolve()
    path = Path(os.environ["VMB_CONFIG"]) if os.environ.get("VMB_CONFIG") else home / "config.toml"
    raw: dict[str, Any] = {}
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
    _env_overrides(raw)
    return settings_from_dict(home, raw, source=str(path))
