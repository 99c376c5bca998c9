"""Settings: frozen dataclasses read from ``<VMB_HOME>/config.toml`` plus the environment.

Unknown sections or keys are errors that name the key (a typo must never be silently
ignored). ``VMB_HOME`` moves config, data, jobs and outputs together; tests always set it.
Environment overrides: VMB_MODEL_DIR, VMB_BACKEND, VMB_PORT, VMB_JOB_KIND_MODULES (comma list),
VMB_CONFIG (another config file).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bridge.discovery import default_home, run_dir
from bridge.errors import ConfigError, VMBError, quote, quote_names

T = TypeVar("T")
MAX_ERROR_CHARS = 280  # an unknown-key error lists the valid keys while it stays this short


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


_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _words(typ: Any) -> str:
    """A type as a user reads it ("a number", "a list of a string")."""
    if typing.get_origin(typ) is tuple:
        return f"a list of {_words(typing.get_args(typ)[0]).removeprefix('a ')}s"
    if typing.get_origin(typ) is dict:
        return "a map"
    if typing.get_origin(typ) in (types.UnionType, typing.Union):
        return " or ".join(_words(t) for t in typing.get_args(typ) if t is not type(None))
    return _TYPE_WORDS.get(typ, getattr(typ, "__name__", str(typ)))


def _coerce(value: Any, typ: Any, where: str, error: type[VMBError]) -> Any:
    """`value` as the field type `typ`, or `error` naming the field: an int is a float, a
    list of the item type is a tuple, numbers are finite, a bool is never a number."""
    origin = typing.get_origin(typ)
    if typ is Any:
        return value
    if origin in (types.UnionType, typing.Union):
        arms = [t for t in typing.get_args(typ) if t is not type(None)]
        if value is not None and len(arms) == 1:  # X | None: X's own message names the item
            return _coerce(value, arms[0], where, error)
        for t in typing.get_args(typ):
            if t is type(None) and value is None:
                return None
            try:
                return _coerce(value, t, where, error)
            except error:
                continue
        raise error(f"'{where}' must be {_words(typ)}, got {type(value).__name__} {quote(value)}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise error(f"'{where}' must be {_words(typ)}, got {type(value).__name__}")
        item = typing.get_args(typ)[0]
        return tuple(_coerce(v, item, f"{where}[{i}]", error) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise error(f"'{where}' must be a map, got {type(value).__name__} {quote(value)}")
        return value
    if typ is float and isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise error(f"'{where}' must be a finite number")
        return float(value)
    if isinstance(typ, type) and (
        not isinstance(value, typ) or (typ is not bool and isinstance(value, bool))
    ):
        raise error(f"'{where}' must be {_words(typ)}, got {type(value).__name__} {quote(value)}")
    return value


def load_frozen(
    cls: type[T],
    data: Any,
    where: str = "",
    error: type[VMBError] = ConfigError,
    noun: str = "setting",
    convert: Mapping[str, Callable[[Any], Any]] | None = None,
    wire: Mapping[str, str] | None = None,
) -> T:
    """Build the frozen dataclass `cls` from a map: the one strict loader of the settings and
    of request parameters (CueSpec, SoundtrackSpec). Unknown keys are refused by name, each
    value must have its field's type, a field without a default must be given; `convert`
    parses the keys whose wire form is richer than their type (knobs, markers); `wire` names
    the fields whose key on the wire differs (field name -> key)."""
    if not isinstance(data, dict):
        raise error(f"'{where or noun}' must be a map")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    keys = {(wire or {}).get(name, name): name for name in fields}  # key on the wire -> field
    unknown = [k for k in data if k not in keys]
    if unknown:
        _refuse_unknown(unknown, sorted(keys), where, noun, error)
    for key, name in keys.items():
        f = fields[name]
        no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if no_default and key not in data:
            raise error(f"'{f'{where}.{key}' if where else key}' is required")
    convert = convert or {}
    values = {}
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else key
        values[keys[key]] = (
            convert[key](value)
            if key in convert
            else _coerce(value, hints[keys[key]], dotted, error)
        )
    return cls(**values)


def _refuse_unknown(
    unknown: list[str], known: list[str], where: str, noun: str, error: type[VMBError]
) -> None:
    """Names a peer sent are quoted briefly; the valid names follow while the message stays
    short (a peer sending hundreds of long names gets a short answer)."""
    names = quote_names(f"{where}.{k}" if where else k for k in unknown)
    message = f"unknown {noun} {names}"
    has = f"'{where}' has" if where else f"{noun}s are"
    listed = f"{message}; {has}: {', '.join(known)}"
    raise error(listed if len(listed) <= MAX_ERROR_CHARS else message)


def _build_section(cls: type, data: dict[str, Any], name: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"'{name}' must be a table of settings")
    return load_frozen(cls, data, name)


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
    from engine import backends  # the registry imports this module: read it at call time

    if s.pipeline.backend not in backends.CHOICES:
        raise ConfigError(
            f"pipeline.backend must be {', '.join(backends.CHOICES)}, not {s.pipeline.backend!r}"
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
