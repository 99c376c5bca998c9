"""Stable Audio Open 1.0: DiT + Oobleck VAE + T5 and timing conditioners, built with
stable-audio-tools (SAT) from ``model_config.json`` and loaded strictly from local files.

Why not SAT's own loaders: ``get_pretrained_model`` always downloads, ``copy_state_dict``
silently skips keys that do not match, and SAT's ``T5Conditioner`` asserts a hub name. Here
the T5 entry of the config is replaced by :class:`LocalT5Conditioner` (same state-dict layout:
T5 itself is kept out of it, only ``proj_out`` is in), every missing, unexpected or misshapen
key is a :class:`WeightsError` that names it, and nothing touches the network.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import re
import sys
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bridge.errors import WeightsError
from engine.generate.full import compat

CONFIG_FILE = "model_config.json"
WEIGHTS_FILE = "model.safetensors"

# T5 widths SAT assumes per model name (SAT's T5_MODEL_DIMS); proj_out exists iff they differ
# from the conditioning width, which fixes the checkpoint layout.
T5_WIDTHS = {"t5-small": 512, "t5-base": 768, "t5-large": 1024, "google/flan-t5-base": 768}

# The published stabilityai/stable-audio-open-1.0 model_config.json (its "training" section,
# unused at inference, left out).
SAO_1_0_CONFIG: dict[str, Any] = {
    "model_type": "diffusion_cond",
    "sample_size": 2097152,
    "sample_rate": 44100,
    "audio_channels": 2,
    "model": {
        "pretransform": {
            "type": "autoencoder",
            "iterate_batch": True,
            "config": {
                "encoder": {
                    "type": "oobleck",
                    "config": {
                        "in_channels": 2,
                        "channels": 128,
                        "c_mults": [1, 2, 4, 8, 16],
                        "strides": [2, 4, 4, 8, 8],
                        "latent_dim": 128,
                        "use_snake": True,
                    },
                },
                "decoder": {
                    "type": "oobleck",
                    "config": {
                        "out_channels": 2,
                        "channels": 128,
                        "c_mults": [1, 2, 4, 8, 16],
                        "strides": [2, 4, 4, 8, 8],
                        "latent_dim": 64,
                        "use_snake": True,
                        "final_tanh": False,
                    },
                },
                "bottleneck": {"type": "vae"},
                "latent_dim": 64,
                "downsampling_ratio": 2048,
                "io_channels": 2,
            },
        },
        "conditioning": {
            "configs": [
                {
                    "id": "prompt",
                    "type": "t5",
                    "config": {"t5_model_name": "t5-base", "max_length": 128},
                },
                {"id": "seconds_start", "type": "number", "config": {"min_val": 0, "max_val": 512}},
                {"id": "seconds_total", "type": "number", "config": {"min_val": 0, "max_val": 512}},
            ],
            "cond_dim": 768,
        },
        "diffusion": {
            "cross_attention_cond_ids": ["prompt", "seconds_start", "seconds_total"],
            "global_cond_ids": ["seconds_start", "seconds_total"],
            "type": "dit",
            "config": {
                "io_channels": 64,
                "embed_dim": 1536,
                "depth": 24,
                "num_heads": 24,
                "cond_token_dim": 768,
                "global_cond_dim": 1536,
                "project_cond_tokens": False,
                "transformer_type": "continuous_transformer",
            },
        },
        "io_channels": 64,
    },
}

# t5-base's encoder, for building it with random weights (check-full, benchmarks).
T5_BASE_CONFIG: dict[str, Any] = {
    "vocab_size": 32128,
    "d_model": 768,
    "d_kv": 64,
    "d_ff": 3072,
    "num_layers": 12,
    "num_heads": 12,
    "relative_attention_num_buckets": 32,
}


def tiny_sao_config() -> dict[str, Any]:
    """SAO's layout at toy widths: same conditioners, VAE strides (2048x) and DiT kind."""
    cfg = copy.deepcopy(SAO_1_0_CONFIG)
    cfg["sample_size"] = 2048 * 64  # 2.97 s window, 64 latent frames
    pre = cfg["model"]["pretransform"]["config"]
    pre["encoder"]["config"].update(channels=4, latent_dim=16)
    pre["decoder"]["config"].update(channels=4, latent_dim=8)
    pre["latent_dim"] = 8
    cond = cfg["model"]["conditioning"]
    cond["cond_dim"] = 32  # T5's 128-token limit stays: the attribute text must reach the DiT
    dit = cfg["model"]["diffusion"]["config"]
    # 2 heads of 32 (SAT rotates 32 dims per head at least); context 32 wide -> 1 kv head
    dit.update(
        io_channels=8, embed_dim=64, depth=4, num_heads=2, cond_token_dim=32, global_cond_dim=64
    )
    cfg["model"]["io_channels"] = 8
    return cfg


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """SAT and transformers print to stdout; keep stdout for protocol/JSON output."""
    with contextlib.suppress(Exception):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise WeightsError(f"unsupported SAO model config: {message}")


def validate_config(config: Mapping[str, Any]) -> None:
    """Check the parts of SAT's config this engine relies on (the hooks and the sampler)."""
    _need(config.get("model_type") == "diffusion_cond", "model_type must be diffusion_cond")
    for key in ("sample_size", "sample_rate", "model"):
        _need(key in config, f"missing {key!r}")
    model = config["model"]
    diffusion = model.get("diffusion", {})
    _need(diffusion.get("type") == "dit", "diffusion.type must be dit")
    _need(diffusion.get("diffusion_objective", "v") == "v", "only the v objective is supported")
    dit = diffusion.get("config", {})
    _need(
        dit.get("transformer_type", "continuous_transformer") == "continuous_transformer",
        "transformer_type must be continuous_transformer",
    )
    _need(dit.get("patch_size", 1) == 1, "patch_size must be 1")
    _need(dit.get("cond_token_dim", 0) > 0, "the DiT must cross-attend (cond_token_dim > 0)")
    _need(
        model.get("pretransform", {}).get("type") == "autoencoder",
        "pretransform must be autoencoder",
    )
    ids = {c["id"] for c in model.get("conditioning", {}).get("configs", [])}
    for key in ("prompt", "seconds_start", "seconds_total"):
        _need(key in ids, f"conditioning needs {key!r}")
    prompt = next(c for c in model["conditioning"]["configs"] if c["id"] == "prompt")
    _need(prompt["type"] == "t5", "the prompt conditioner must be t5")
    name = prompt["config"].get("t5_model_name", "t5-base")
    _need(name in T5_WIDTHS, f"unknown t5_model_name {name!r}")
    _need(
        config["sample_size"] % model["pretransform"]["config"]["downsampling_ratio"] == 0,
        "sample_size must be a multiple of the VAE downsampling",
    )


class LocalT5Conditioner(nn.Module):
    """SAT's T5 prompt conditioner, reading the encoder from a local folder.

    Same outputs as SAT's (token embeddings zeroed on padding, then ``proj_out``) and same
    state-dict layout: T5 is held outside ``state_dict`` (in ``__dict__``) because SAO's
    checkpoint does not contain it; it comes from its own model folder.
    """

    def __init__(
        self, output_dim: int, t5_model_name: str = "t5-base", max_length: int = 128, **unknown: Any
    ) -> None:
        super().__init__()
        if unknown:
            raise WeightsError(f"unknown t5 conditioner settings: {', '.join(sorted(unknown))}")
        self.dim = T5_WIDTHS[t5_model_name]
        self.output_dim = output_dim
        self.max_length = int(max_length)
        self.proj_out: nn.Module = (
            nn.Linear(self.dim, output_dim) if self.dim != output_dim else nn.Identity()
        )
        self.__dict__["t5"] = None
        self.__dict__["tokenizer"] = None

    @property
    def loaded(self) -> bool:
        return self.__dict__["t5"] is not None

    def load_encoder(self, t5_dir: Path, dtype: torch.dtype = torch.float32) -> None:
        """Load tokenizer + encoder from ``t5_dir`` (no hub); missing weights are errors."""
        from transformers import AutoTokenizer, T5EncoderModel

        if not (t5_dir / "config.json").is_file():
            raise WeightsError(f"{t5_dir} is not a T5 folder (no config.json)")
        with quiet():
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(t5_dir), local_files_only=True)
                model, info = T5EncoderModel.from_pretrained(
                    str(t5_dir), local_files_only=True, output_loading_info=True
                )
            except (OSError, ValueError) as exc:
                raise WeightsError(f"cannot load the T5 encoder from {t5_dir}: {exc}") from None
        # Decoder weights of a full T5 checkpoint are unexpected for the encoder by design.
        bad = sorted(info.get("missing_keys", ())) + [
            str(m) for m in info.get("mismatched_keys", ())
        ]
        if bad:
            raise WeightsError(f"T5 weights in {t5_dir} do not match: {', '.join(bad[:20])}")
        if len(tokenizer) < 32:  # transformers 5 returns near-empty tokenizers on failure
            raise WeightsError(f"the T5 tokenizer in {t5_dir} is empty or incomplete")
        if model.config.d_model != self.dim:
            raise WeightsError(
                f"T5 in {t5_dir} is {model.config.d_model} wide; the SAO config expects {self.dim}"
            )
        self.set_encoder(model.to(dtype), tokenizer)

    def set_encoder(self, model: nn.Module, tokenizer: Any) -> None:
        """Use an already built encoder (benchmarks with random t5-base weights)."""
        self.__dict__["t5"] = model.eval().requires_grad_(False)
        self.__dict__["tokenizer"] = tokenizer

    def encoder_parameters(self) -> int:
        t5 = self.__dict__["t5"]
        return sum(p.numel() for p in t5.parameters()) if t5 is not None else 0

    def cut_words(self, text: str) -> str | None:
        """The end of ``text`` the encoder's token limit drops (None: it all fits)."""
        tokenizer = self.__dict__["tokenizer"]
        if tokenizer is None:
            return None
        ids = tokenizer(text, truncation=False)["input_ids"]
        if len(ids) <= self.max_length:
            return None
        kept = tokenizer.decode(ids[: self.max_length - 1], skip_special_tokens=True)
        words = text.split()
        n = len(kept.split())
        return " ".join(words[max(0, n - 1) :]) if n <= len(words) else ""

    def move_encoder(self, device: torch.device | str) -> None:
        if self.loaded:
            self.__dict__["t5"].to(device)

    def forward(
        self, texts: list[str], device: torch.device | str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        t5 = self.__dict__["t5"]
        if t5 is None:
            raise WeightsError("the T5 prompt encoder is not loaded (t5-base model folder)")
        encoded = self.__dict__["tokenizer"](
            list(texts),
            truncation=True,
            max_length=self.max_length,
            padding="max_length",
            return_tensors="pt",
        )
        t5_device = next(t5.parameters()).device
        ids = encoded["input_ids"].to(t5_device)
        mask = encoded["attention_mask"].to(t5_device).bool()
        with torch.no_grad():
            emb = t5(input_ids=ids, attention_mask=mask).last_hidden_state
        emb = emb.to(device)
        mask = mask.to(device)
        if not isinstance(self.proj_out, nn.Identity):
            emb = self.proj_out(emb.to(self.proj_out.weight.dtype))
        return emb * mask.unsqueeze(-1).to(emb.dtype), mask


class SAO:
    """A built SAO model: SAT's ConditionedDiffusionModelWrapper plus its config."""

    def __init__(self, model: nn.Module, config: dict[str, Any]) -> None:
        self.model = model
        self.config = config

    @property
    def sample_rate(self) -> int:
        return int(self.config["sample_rate"])

    @property
    def sample_size(self) -> int:
        return int(self.config["sample_size"])

    @property
    def downsampling_ratio(self) -> int:
        return int(self.model.pretransform.downsampling_ratio)

    @property
    def window_latents(self) -> int:
        return self.sample_size // self.downsampling_ratio

    @property
    def latent_channels(self) -> int:
        return int(self.model.io_channels)

    @property
    def audio_channels(self) -> int:
        return int(self.config.get("audio_channels", 2))

    @property
    def dit(self) -> nn.Module:
        """SAT's DiffusionTransformer (the DiTWrapper's inner model)."""
        return self.model.model.model

    @property
    def transformer(self) -> nn.Module:
        return self.dit.transformer

    @property
    def prompt(self) -> LocalT5Conditioner:
        return self.model.conditioner.conditioners["prompt"]

    def parameter_counts(self) -> dict[str, int]:
        def count(m: nn.Module) -> int:
            return sum(p.numel() for p in m.parameters())

        return {
            "dit": count(self.model.model),
            "vae": count(self.model.pretransform),
            "conditioners": count(self.model.conditioner),
            "t5": self.prompt.encoder_parameters(),
        }


def build_sao(config: Mapping[str, Any], t5_dir: Path | None = None) -> SAO:
    """Build SAO from a SAT config with fresh weights; T5 loaded from ``t5_dir`` if given."""
    validate_config(config)
    cfg = copy.deepcopy(dict(config))
    conditioning = cfg["model"]["conditioning"]
    t5_entries = [c for c in conditioning["configs"] if c["type"] == "t5"]
    conditioning["configs"] = [c for c in conditioning["configs"] if c["type"] != "t5"]
    sat = compat.load_sat()
    with quiet():
        model = sat.factory.create_model_from_config(cfg)
    for entry in t5_entries:
        cond = LocalT5Conditioner(output_dim=conditioning["cond_dim"], **entry["config"])
        model.conditioner.conditioners[entry["id"]] = cond
    model.eval().requires_grad_(False)
    sao = SAO(model, copy.deepcopy(dict(config)))
    if t5_dir is not None:
        sao.prompt.load_encoder(t5_dir)
    return sao


def _short(keys: list[str], limit: int = 12) -> str:
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_state_strict(module: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """load_state_dict(strict=True), with an error that names every kind of mismatch."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshapen = [
        f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or misshapen:
        parts = []
        if missing:
            parts.append(f"missing keys: {_short(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_short(unexpected)}")
        if misshapen:
            parts.append(f"wrong shapes: {_short(misshapen)}")
        raise WeightsError(
            f"{what} does not match its config; " + "; ".join(parts),
            missing=missing,
            unexpected=unexpected,
            misshapen=misshapen,
        )
    module.load_state_dict(dict(state), strict=True)


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise WeightsError(f"{folder} has no {CONFIG_FILE}") from None
    except ValueError as exc:
        raise WeightsError(f"{path} is not valid JSON: {exc}") from None


def load_sao(folder: Path, t5_dir: Path | None) -> SAO:
    """SAO from ``<folder>/model_config.json`` + ``model.safetensors``, strictly."""
    from safetensors.torch import load_file

    config = read_config(folder)
    sao = build_sao(config, t5_dir)
    path = folder / WEIGHTS_FILE
    if not path.is_file():
        raise WeightsError(f"{folder} has no {WEIGHTS_FILE}")
    load_state_strict(sao.model, load_file(str(path)), f"{path}")
    return sao


def save_sao(sao: SAO, folder: Path) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(json.dumps(sao.config, indent=2))
    state = {k: v.detach().contiguous() for k, v in sao.model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))


def randomize_zero_parameters(module: nn.Module, generator: torch.Generator) -> None:
    """SAT zero-initialises branch outputs; a random-weight model for tests and benchmarks
    should exercise every path, so give those parameters small random values."""
    with torch.no_grad():
        for p in module.parameters():
            if p.numel() and not p.detach().abs().amax().item():
                fan_in = p.shape[-1] if p.ndim > 1 else p.numel()
                noise = torch.randn(p.shape, generator=generator) * (0.5 / math.sqrt(fan_in))
                p.copy_(noise.to(p.dtype))


# ---- key layout of the published checkpoint, from SAT's module structure for this config ----


def expected_key_patterns(config: Mapping[str, Any]) -> list[str]:
    """Regexes for every state-dict key of SAO as SAT 0.0.19 names them (model.safetensors).

    Written from the config, not read from the model, so a change in SAT's module names or
    in our T5 replacement shows up as a layout mismatch.
    """
    model = config["model"]
    dit = model["diffusion"]["config"]
    depth = int(dit["depth"])
    cond_dim = int(model["conditioning"]["cond_dim"])
    layer = rf"model\.model\.transformer\.layers\.({'|'.join(str(i) for i in range(depth))})\."
    pats = [
        r"model\.model\.timestep_features\.weight",
        r"model\.model\.to_timestep_embed\.(0|2)\.(weight|bias)",
        r"model\.model\.to_cond_embed\.(0|2)\.weight",
        r"model\.model\.to_global_embed\.(0|2)\.weight",
        r"model\.model\.(preprocess|postprocess)_conv\.weight",
        r"model\.model\.transformer\.(project_in|project_out)\.weight",
        r"model\.model\.transformer\.rotary_pos_emb\.inv_freq",
        layer + r"(pre_norm|cross_attend_norm|ff_norm)\.(gamma|beta)",
        layer + r"self_attn\.(to_qkv|to_out)\.weight",
        layer + r"cross_attn\.(to_q|to_kv|to_out)\.weight",
        layer + r"ff\.ff\.0\.proj\.(weight|bias)",
        layer + r"ff\.ff\.2\.(weight|bias)",
    ]
    for c in model["conditioning"]["configs"]:
        if c["type"] == "number":
            pats.append(
                rf"conditioner\.conditioners\.{c['id']}\.embedder\.embedding\.(0\.weights|1\.(weight|bias))"
            )
        elif (
            c["type"] == "t5" and T5_WIDTHS[c["config"].get("t5_model_name", "t5-base")] != cond_dim
        ):
            pats.append(rf"conditioner\.conditioners\.{c['id']}\.proj_out\.(weight|bias)")
    # Oobleck: weight-normed convs (weight_g/weight_v/bias) and Snake (alpha/beta) in blocks.
    pats.append(
        r"pretransform\.model\.(encoder|decoder)\.layers\.\d+(\.(layers|block)\.\d+)*"
        r"(\.(weight_g|weight_v|bias|alpha|beta))"
    )
    return pats


def check_layout(keys: list[str], config: Mapping[str, Any]) -> dict[str, Any]:
    """Match state-dict keys against the expected patterns (both directions)."""
    pats = [re.compile(p) for p in expected_key_patterns(config)]
    unmatched = [k for k in keys if not any(p.fullmatch(k) for p in pats)]
    unused = [p.pattern for p in pats if not any(p.fullmatch(k) for k in keys)]
    depth = int(config["model"]["diffusion"]["config"]["depth"])
    per_layer = [k for k in keys if k.startswith("model.model.transformer.layers.0.")]
    return {
        "keys": len(keys),
        "patterns": len(pats),
        "unmatched_keys": unmatched,
        "unused_patterns": unused,
        "dit_layers": depth,
        "keys_per_dit_layer": len(per_layer),
        "ok": not unmatched and not unused,
    }


# ---- tiny builders (engine/models.json "tiny_builder") ----

# Words of the tiny tokenizer's vocabulary (anything else falls back to characters).
_TINY_TEXT = """
the a of and to in with music slow fast medium tempo piano strings drums guitar synth bass
calm happy sad epic dark bright tense ambient rock pop jazz orchestral electronic cinematic
folk energy high low mood genre warm soft loud beat melody
"""


def write_tiny_t5(out_dir: Path, seed: int) -> None:
    """A one-layer T5 encoder, 768 wide (t5-base's width), with a word-level unigram vocab."""
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    words = _TINY_TEXT.split()
    chars = sorted(set("".join(words)) | set("0123456789,.-'"))
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [("\u2581" + w, -1.0 - 0.01 * i) for i, w in enumerate(words)]
    vocab += [("\u2581", -5.0)] + [(c, -6.0) for c in chars]
    with quiet(), torch.random.fork_rng(devices=[]):
        tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0)
        torch.manual_seed(seed)
        config = T5Config(
            vocab_size=len(tokenizer),
            d_model=768,
            d_kv=64,
            d_ff=256,
            num_layers=1,
            num_heads=4,
            decoder_start_token_id=0,
        )
        model = T5EncoderModel(config)
        tokenizer.save_pretrained(str(out_dir))
        model.save_pretrained(str(out_dir))


def write_tiny_sao(out_dir: Path, seed: int) -> None:
    """SAO's production layout at toy widths with random weights (every path non-zero)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sao = build_sao(tiny_sao_config())
    randomize_zero_parameters(sao.model, torch.Generator().manual_seed(seed + 1))
    save_sao(sao, out_dir)


def build_random_t5_base() -> nn.Module:
    """t5-base's encoder with random weights (parameter counts and speed only)."""
    from transformers import T5Config, T5EncoderModel

    with quiet():
        return T5EncoderModel(T5Config(**T5_BASE_CONFIG)).eval()
