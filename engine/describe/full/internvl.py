"""MMDM: InternVL + a LoRA adapter that writes one sentence about the music a video needs.

Two base formats load here:
- "native": transformers' own InternVLForConditionalGeneration (the "-hf" checkpoints,
  InternVL3/3.5, or InternVL2 converted with OpenGVLab's internvl_custom2hf.py);
- "remote": an InternVL2/2.5 folder whose config says ``internvl_chat`` and which holds its
  own modelling code (trust_remote_code, read from the folder, never from a hub).

The processor is ours (no torchvision here): frames are resized to the vision tower's square
input, scaled and normalised exactly as GotOcr2ImageProcessorPil(crop_to_patches=False)
does, and the ids are built by hand: ``Frame1: <img>`` + ``<IMG_CONTEXT>`` x tokens-per-image
+ ``</img>`` per frame, then the paper's question, in the chatml turn format. The LoRA
adapter touches only the language model (a regex on its module names: a plain
``["q_proj", "v_proj"]`` would also wrap the vision tower); it lives in
engine.describe.full.lora, the toy-size models for tests in engine.describe.full.tiny.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from bridge.errors import InvalidRequest, MediaError, WeightsError
from engine.types import ProgressFn

PROMPT = (
    "Based on the emotional tone, pacing, and visuals of this video, how would you compose "
    "the music? Provide a one-sentence summary of the key musical elements that you use."
)
"""The paper's instruction (its §MMDM); for a single image "video" reads "image"."""

NUM_FRAMES = 10  # frames per video, sampled uniformly over the cue's source range
TOP_K, TOP_P, TEMPERATURE = 50, 1.0, 1.0  # the paper's sampling settings
MAX_NEW_TOKENS = 96  # one sentence; the paper's example is ~25 tokens
MIN_NEW_TOKENS = 4  # an immediate end-of-turn is never a description

IMG_START, IMG_END, IMG_CONTEXT = "<img>", "</img>", "<IMG_CONTEXT>"
TURN_START, TURN_END = "<|im_start|>", "<|im_end|>"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_CHATML_TEMPLATES = ("internlm2-chat", "Hermes-2", "internvl2_5", "internlm2-chat-v3")

Kind = Literal["native", "remote"]
Source = Literal["video", "image"]


@dataclass(frozen=True)
class VisionSpec:
    """What the prompt and the pixels must agree on for one base model."""

    image_size: int
    tokens_per_image: int
    image_token_id: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


@dataclass(frozen=True)
class BaseSignature:
    """Shape facts of a base model; an adapter records them and refuses another base."""

    kind: str
    text_model_type: str
    text_hidden_size: int
    text_layers: int
    vocab_size: int
    vision_hidden_size: int
    vision_layers: int
    image_size: int
    image_token_id: int


# ----------------------------------------------------------------------------- frames


def sample_indices(count: int, wanted: int = NUM_FRAMES) -> list[int]:
    """Uniform pick: the middle frame of each of `wanted` equal segments (InternVL's video
    sampling; it skips the very first and last frames, often fades or cuts)."""
    if count <= wanted:
        return list(range(count))
    seg = count / wanted
    return [min(count - 1, int(seg / 2 + seg * i)) for i in range(wanted)]


def check_frames(frames: np.ndarray) -> np.ndarray:
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3:
        shape = getattr(frames, "shape", None)
        raise InvalidRequest(f"frames must be an (N, H, W, 3) array, got shape {shape}")
    if frames.dtype != np.uint8:
        raise InvalidRequest(f"frames must be uint8 RGB, got {frames.dtype}")
    if frames.shape[0] == 0:
        raise MediaError("no frames could be decoded from the source range")
    if frames.shape[1] < 2 or frames.shape[2] < 2:
        raise MediaError(f"frames are too small ({frames.shape[2]}x{frames.shape[1]} pixels)")
    return frames


def pixel_values(frames: np.ndarray, spec: VisionSpec) -> torch.Tensor:
    """(N, 3, S, S) float32: bicubic resize to the tower's input, /255, mean/std."""
    check_frames(frames)
    size = spec.image_size
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    out = np.empty((frames.shape[0], 3, size, size), dtype=np.float32)
    for i, frame in enumerate(frames):
        img = Image.fromarray(frame).resize((size, size), Image.Resampling.BICUBIC)
        x = np.asarray(img, dtype=np.float32) / 255.0
        out[i] = ((x - mean) / std).transpose(2, 0, 1)
    return torch.from_numpy(out)


# ----------------------------------------------------------------------------- prompt


def question_for(source: Source) -> str:
    return PROMPT if source == "video" else PROMPT.replace("this video", "this image")


def build_prompt(num_images: int, tokens_per_image: int, source: Source) -> str:
    """The user turn and the opening of the assistant turn, image slots expanded."""
    slot = IMG_START + IMG_CONTEXT * tokens_per_image + IMG_END
    if source == "video":
        visual = "".join(f"Frame{i + 1}: {slot}\n" for i in range(num_images))
    else:
        if num_images != 1:
            raise InvalidRequest(f"an image input has one picture, got {num_images}")
        visual = slot + "\n"
    return f"{TURN_START}user\n{visual}{question_for(source)}{TURN_END}\n{TURN_START}assistant\n"


# ----------------------------------------------------------------------------- loading


def pick_device(setting: str) -> torch.device:
    if setting == "cpu":
        return torch.device("cpu")
    if setting in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    if setting in ("auto", "mps") and torch.backends.mps.is_available():
        return torch.device("mps")
    if setting in ("cuda", "mps"):
        raise WeightsError(f"models.device is {setting!r} but no such device is available")
    return torch.device("cpu")


def seeded(device: torch.device, seed: int) -> contextlib.AbstractContextManager[None]:
    """Torch's global RNG (CPU + this accelerator) seeded for a block, then restored: the
    seed belongs to one request and leaks into nothing else."""

    @contextlib.contextmanager
    def block() -> Iterator[None]:
        devices = [device.index or 0] if device.type == "cuda" else []
        kind = device.type if device.type in ("cuda", "mps") else "cuda"
        with torch.random.fork_rng(devices=devices, device_type=kind):
            torch.manual_seed(seed)
            yield

    return block()


def pick_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA (the paper trains in bf16), fp16 on Apple GPUs, fp32 on CPU."""
    return {"cuda": torch.bfloat16, "mps": torch.float16}.get(device.type, torch.float32)


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise WeightsError(f"{path} is missing") from None
    except ValueError as exc:
        raise WeightsError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WeightsError(f"{path} must hold a JSON object")
    return data


def base_kind(folder: Path) -> Kind:
    config = read_json(folder / "config.json")
    model_type = config.get("model_type")
    if model_type == "internvl":
        return "native"
    if model_type == "internvl_chat":
        if not config.get("auto_map") or not list(folder.glob("*.py")):
            raise WeightsError(
                f"{folder} is an InternVL2 checkpoint in OpenGVLab's own format but its "
                "modelling code is not in the folder; copy the repo's *.py files there, or "
                "convert it with internvl_custom2hf.py"
            )
        return "remote"
    raise WeightsError(f"{folder}/config.json: model_type {model_type!r} is not InternVL")


class MMDM:
    """A loaded base (optionally with an adapter): prompt encoding, sampling and the loss.

    Holds weights only; every request passes its own seed and progress callback.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        spec: VisionSpec,
        signature: BaseSignature,
        kind: Kind,
        device: torch.device,
        dtype: torch.dtype,
        base_name: str = "internvl",
    ) -> None:
        self.model = model
        self.base_name = base_name  # the base's model-folder name, recorded in adapters
        self.tokenizer = tokenizer
        self.spec = spec
        self.signature = signature
        self.kind = kind
        self.device = device
        self.dtype = dtype
        self.turn_end_id = _single_token(tokenizer, TURN_END)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        stop = {self.turn_end_id}
        if tokenizer.eos_token_id is not None:
            stop.add(int(tokenizer.eos_token_id))
        self.stop_ids = sorted(stop)
        # tokens a description never contains: image slots and turn openers
        self.suppress_ids = sorted(
            {_single_token(tokenizer, t) for t in (IMG_START, IMG_END, IMG_CONTEXT, TURN_START)}
        )

    # -- encoding

    def encode(
        self, frames: np.ndarray, source: Source, answer: str | None = None
    ) -> dict[str, torch.Tensor]:
        """input_ids, attention_mask, pixel_values (+ labels on the answer when given)."""
        pixels = pixel_values(frames, self.spec)
        prompt = build_prompt(pixels.shape[0], self.spec.tokens_per_image, source)
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        expected = pixels.shape[0] * self.spec.tokens_per_image
        if sum(1 for i in ids if i == self.spec.image_token_id) != expected:
            raise WeightsError(
                f"the tokenizer does not read {IMG_CONTEXT} as one token (id "
                f"{self.spec.image_token_id}); the base model folder is inconsistent"
            )
        labels = None
        if answer is not None:
            answer_ids = self.tokenizer(answer, add_special_tokens=False)["input_ids"]
            answer_ids = [*answer_ids, self.turn_end_id]
            labels = [-100] * len(ids) + answer_ids
            ids = ids + answer_ids
        out = {
            "input_ids": torch.tensor([ids], dtype=torch.long, device=self.device),
            "attention_mask": torch.ones((1, len(ids)), dtype=torch.long, device=self.device),
            "pixel_values": pixels.to(self.device, self.dtype),
        }
        if labels is not None:
            out["labels"] = torch.tensor([labels], dtype=torch.long, device=self.device)
        return out

    # -- inference

    def generate(
        self,
        frames: np.ndarray,
        source: Source,
        seed: int,
        progress: ProgressFn,
        max_new_tokens: int = MAX_NEW_TOKENS,
    ) -> str:
        """Sample one description (top-k 50, top-p 1.0, temperature 1.0) under `seed`.

        The global torch RNG is forked for the call, so the seed lives only in this request.
        `progress` runs after every token; a cancel raised there stops generation.
        """
        from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

        batch = self.encode(frames, source)
        prompt_len = batch["input_ids"].shape[1]

        class _Progress(StoppingCriteria):
            """Called once per new token (remote-code models pass only the new ids)."""

            step = 0

            def __call__(self, input_ids: torch.Tensor, scores: Any, **kw: Any) -> torch.Tensor:
                self.step += 1
                progress("describe", min(self.step, max_new_tokens), max_new_tokens)
                return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

        config = GenerationConfig(
            do_sample=True,
            top_k=TOP_K,
            top_p=TOP_P,
            temperature=TEMPERATURE,
            max_new_tokens=max_new_tokens,
            min_new_tokens=min(MIN_NEW_TOKENS, max_new_tokens),
            eos_token_id=self.stop_ids,
            pad_token_id=self.pad_id,
            suppress_tokens=self.suppress_ids,
        )
        self.model.eval()
        with seeded(self.device, seed), torch.inference_mode():
            out = self.model.generate(
                **batch,
                generation_config=config,
                stopping_criteria=StoppingCriteriaList([_Progress()]),
            )
        new = out[0, prompt_len:] if self.kind == "native" else out[0]
        return self.tokenizer.decode(new.tolist(), skip_special_tokens=True)

    # -- training

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean cross-entropy over the answer tokens of one encoded example."""
        if self.kind == "remote":
            flags = torch.ones((batch["pixel_values"].shape[0], 1), dtype=torch.long)
            return self.model(**batch, image_flags=flags.to(self.device)).loss
        return self.model(**batch).loss


def _single_token(tokenizer: Any, text: str) -> int:
    ids = tokenizer.convert_tokens_to_ids([text])
    unk = getattr(tokenizer, "unk_token_id", None)
    if not ids or ids[0] is None or (unk is not None and ids[0] == unk):
        raise WeightsError(
            f"the tokenizer has no {text!r} token; this is not an InternVL chat model"
        )
    return int(ids[0])


def quiet_transformers() -> None:
    """Loading bars go to the terminal, never into a daemon's logs or protocol streams."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _load_tokenizer(folder: Path, remote: bool) -> Any:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(
            str(folder), local_files_only=True, trust_remote_code=remote
        )
    except (OSError, ValueError) as exc:
        raise WeightsError(f"cannot load the tokenizer in {folder}: {exc}") from None
    if len(tok) < 10:  # transformers 5 can return an empty tokenizer instead of failing
        raise WeightsError(f"the tokenizer in {folder} is empty ({len(tok)} tokens)")
    return tok


def _vision_mean_std(folder: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    path = folder / "preprocessor_config.json"
    if not path.exists():
        return IMAGENET_MEAN, IMAGENET_STD
    data = read_json(path)
    mean = tuple(float(v) for v in data.get("image_mean", IMAGENET_MEAN))
    std = tuple(float(v) for v in data.get("image_std", IMAGENET_STD))
    if len(mean) != 3 or len(std) != 3:
        raise WeightsError(f"{path}: image_mean and image_std need three values")
    return mean, std


def _first(value: Any) -> int:
    return int(value[0] if isinstance(value, list | tuple) else value)


def _load_model(folder: Path, kind: Kind, dtype: torch.dtype) -> Any:
    """The InternVL weights, strictly: missing, unexpected or mis-shaped ones are errors."""
    try:
        if kind == "native":
            from transformers import InternVLForConditionalGeneration

            model, info = InternVLForConditionalGeneration.from_pretrained(
                str(folder), local_files_only=True, dtype=dtype, output_loading_info=True
            )
        else:
            from transformers import AutoModel

            model, info = AutoModel.from_pretrained(
                str(folder),
                local_files_only=True,
                trust_remote_code=True,
                dtype=dtype,
                output_loading_info=True,
            )
    except (OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"cannot load the InternVL weights in {folder}: {exc}") from None
    problems = {k: sorted(map(str, v)) for k, v in info.items() if v}
    if problems:
        raise WeightsError(f"{folder}: weights do not match the config: {problems}")
    return model


def _native_vision(folder: Path, config: Any, context_id: int) -> tuple[Any, Any, int, int]:
    """(vision config, text config, image size, tokens per image) of a transformers-native
    InternVL, checked against the tokenizer."""
    vision, text = config.vision_config, config.text_config
    size = _first(vision.image_size)
    patch = _first(vision.patch_size)
    tokens = int((size // patch) ** 2 * config.downsample_ratio**2)
    if tokens != config.image_seq_length:
        raise WeightsError(
            f"{folder}: image_seq_length {config.image_seq_length} does not match the "
            f"vision tower ({size}px / {patch}px patches x {config.downsample_ratio}^2)"
        )
    if context_id != config.image_token_id:
        raise WeightsError(
            f"{folder}: config image_token_id {config.image_token_id} is not the "
            f"tokenizer's {IMG_CONTEXT} ({context_id})"
        )
    return vision, text, size, tokens


def _remote_vision(folder: Path, model: Any, context_id: int) -> tuple[Any, Any, int, int]:
    """The same for a remote-code InternVL2 (chatml templates only)."""
    config = model.config
    if getattr(config, "template", None) not in _CHATML_TEMPLATES:
        raise WeightsError(
            f"{folder}: chat template {getattr(config, 'template', None)!r} is not "
            f"supported (chatml templates only: {', '.join(_CHATML_TEMPLATES)})"
        )
    vision, text = config.vision_config, config.llm_config
    size = int(getattr(config, "force_image_size", None) or _first(vision.image_size))
    tokens = int(model.num_image_token)
    model.img_context_token_id = context_id
    return vision, text, size, tokens


def load_base(folder: Path, device: torch.device, dtype: torch.dtype | None = None) -> MMDM:
    """Load a base InternVL strictly (missing, unexpected or mis-shaped weights are errors)."""
    quiet_transformers()
    kind = base_kind(folder)
    dtype = dtype or pick_dtype(device)
    tokenizer = _load_tokenizer(folder, remote=kind == "remote")
    mean, std = _vision_mean_std(folder)
    model = _load_model(folder, kind, dtype)
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    context_id = _single_token(tokenizer, IMG_CONTEXT)
    _single_token(tokenizer, IMG_START)
    _single_token(tokenizer, IMG_END)
    if kind == "native":
        vision, text, size, tokens = _native_vision(folder, model.config, context_id)
    else:
        vision, text, size, tokens = _remote_vision(folder, model, context_id)
    spec = VisionSpec(
        image_size=size,
        tokens_per_image=tokens,
        image_token_id=context_id,
        mean=mean,  # type: ignore[arg-type]
        std=std,  # type: ignore[arg-type]
    )
    signature = BaseSignature(
        kind=kind,
        text_model_type=str(text.model_type),
        text_hidden_size=int(text.hidden_size),
        text_layers=int(text.num_hidden_layers),
        vocab_size=int(text.vocab_size),
        vision_hidden_size=int(vision.hidden_size),
        vision_layers=int(vision.num_hidden_layers),
        image_size=size,
        image_token_id=context_id,
    )
    return MMDM(model, tokenizer, spec, signature, kind, device, dtype, folder.name)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
