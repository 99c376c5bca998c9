"""Config = constructor signature, saved as JSON next to the module's safetensors.

Frozen dataclass configs round-trip through JSON; unknown or missing keys are errors that name
them (SAT's silent defaults are the counter-example). Weights load strictly.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

from torch import nn

from bridge.errors import WeightsError
from engine.util import atomic

C = TypeVar("C")


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def config_from_dict(cls: type[C], data: dict[str, Any], where: str) -> C:
    if not isinstance(data, dict):
        raise WeightsError(f"{where}: expected a JSON object")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise WeightsError(
            f"{where}: unknown keys {', '.join(unknown)}; known: {', '.join(fields)}"
        )
    required = [
        n
        for n, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [n for n in required if n not in data]
    if missing:
        raise WeightsError(f"{where}: missing keys {', '.join(missing)}")
    return cls(**data)


def save_module(module: nn.Module, config: Any, folder: Path, stem: str) -> None:
    """Write ``<stem>.json`` (the config) and ``<stem>.safetensors`` (the weights)."""
    from safetensors.torch import save

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    atomic.write_bytes(folder / f"{stem}.safetensors", save(state))
    atomic.write_bytes(
        folder / f"{stem}.json", json.dumps(config_to_dict(config), indent=2).encode()
    )


def load_config(cls: type[C], folder: Path, stem: str) -> C:
    path = folder / f"{stem}.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise WeightsError(f"{folder} has no {stem}.json") from None
    except ValueError as exc:
        raise WeightsError(f"{path} is not valid JSON: {exc}") from None
    return config_from_dict(cls, data, str(path))


def load_module_weights(module: nn.Module, folder: Path, stem: str) -> None:
    from safetensors.torch import load_file

    from engine.generate.full.sao import load_state_strict

    path = folder / f"{stem}.safetensors"
    if not path.is_file():
        raise WeightsError(f"{folder} has no {stem}.safetensors")
    load_state_strict(module, load_file(str(path)), str(path))
