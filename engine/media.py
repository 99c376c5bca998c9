"""Frames, audio, scene cuts and motion of a source range, decoded with PyAV.

Times are media seconds from the first frame of the stream (an OTIO source time minus its
media reference's available_range start). One sequential pass over the range serves the
sampled frames, the cut detector and the motion measure: H.264 cannot skip decoding the
frames references depend on, so the pass decodes reference frames only (non-reference
frames are decoded just where a sampled frame or an ambiguous cut needs them). That keeps
10 frames + cuts + motion of a 30 s 1080p clip under a second on two cores.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from bridge.errors import InvalidRequest, MediaError
from engine.types import VisualInput

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
MAX_FRAME_PIXELS = 8192 * 8192  # beyond this a frame is refused (memory, not codec, limit)
ANALYSIS_WIDTH = 160
GRID = (18, 32)  # rows, cols of the thumbnails the cut detector compares
CUT_MIN_DIFF = 0.05  # a cut changes the picture by at least this much (mean abs, 0..1) ...
CUT_RATIO = 3.0  # ... and by this many times the local typical frame difference
CUT_WINDOW = 6  # neighbouring differences on each side that set "typical"
MIN_SHOT_FRAMES = 3  # two cuts closer than this are one cut (flash frames, dissolves)


@dataclass(frozen=True)
class MediaInfo:
    """What `vmb probe` and the pipeline need to know before decoding."""

    path: str
    duration_s: float
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    rate: float = 0.0
    codec: str = ""
    pix_fmt: str = ""
    variable_frame_rate: bool = False
    audio_rate: int = 0
    audio_channels: int = 0
    is_image: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "duration_s": round(self.duration_s, 6),
            "has_video": self.has_video,
            "has_audio": self.has_audio,
            "width": self.width,
            "height": self.height,
            "rate": round(self.rate, 6),
            "codec": self.codec,
            "pix_fmt": self.pix_fmt,
            "variable_frame_rate": self.variable_frame_rate,
            "audio_rate": self.audio_rate,
            "audio_channels": self.audio_channels,
            "is_image": self.is_image,
        }


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


@contextmanager
def _opened(path: str | Path) -> Iterator[av.container.InputContainer]:
    """Open a media file; every failure inside becomes a MediaError naming the file."""
    p = Path(path)
    if not p.exists():
        raise MediaError(f"{p}: no such file")
    if not p.is_file():
        raise MediaError(f"{p}: not a file")
    if p.stat().st_size == 0:
        raise MediaError(f"{p}: the file is empty")
    try:
        container = av.open(str(p))
    except av.error.FFmpegError as exc:
        raise MediaError(f"{p}: not a readable media file ({exc.strerror or exc})") from exc
    try:
        yield container
    except av.error.FFmpegError as exc:
        raise MediaError(f"{p}: decoding failed ({exc.strerror or exc}); damaged file?") from exc
    finally:
        container.close()


def _video_stream(path: str | Path, container: av.container.InputContainer) -> av.VideoStream:
    if not container.streams.video:
        raise MediaError(f"{path}: no video stream (audio-only file?)")
    stream = container.streams.video[0]
    ctx = stream.codec_context
    if ctx.width * ctx.height > MAX_FRAME_PIXELS:
        raise MediaError(
            f"{path}: frames of {ctx.width}x{ctx.height} are too large "
            f"(limit {MAX_FRAME_PIXELS // 1_000_000} megapixels)"
        )
    return stream


def _origin(stream: av.stream.Stream) -> float:
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def _duration(container: av.container.InputContainer, stream: av.stream.Stream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return max(0.0, container.duration / av.time_base - _origin(stream))
    return 0.0


def _rate(stream: av.VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def _variable_rate(container: av.container.InputContainer, video: av.VideoStream) -> bool:
    """Average and nominal rates disagree, or frame steps differ (first 300 frames; Matroska
    headers only know the nominal rate)."""
    average, guessed = video.average_rate, video.guessed_rate
    if average and guessed and abs(float(average) / float(guessed) - 1) > 0.01:
        return True
    packets = (p.pts for p in container.demux(video) if p.pts is not None)
    # packets come in decode order: the last few of a prefix leave holes in display order
    steps = np.diff(sorted(itertools.islice(packets, 300))[:-16])
    steps = steps[steps > 0]
    return bool(steps.size > 1 and steps.max() > 1.1 * steps.min())


def probe(path: str | Path) -> MediaInfo:
    """Streams, duration and frame rate, without decoding."""
    with _opened(path) as container:
        info: dict[str, object] = {"path": str(path), "is_image": is_image(path)}
        audio = container.streams.audio[0] if container.streams.audio else None
        video = container.streams.video[0] if container.streams.video else None
        if video is None and audio is None:
            raise MediaError(f"{path}: no audio or video stream")
        main = video or audio
        info["duration_s"] = 0.0 if info["is_image"] else _duration(container, main)
        if video is not None:
            _video_stream(path, container)
            info.update(
                width=video.codec_context.width,
                height=video.codec_context.height,
                rate=_rate(video),
                codec=video.codec_context.name,
                pix_fmt=video.codec_context.pix_fmt or "",
                variable_frame_rate=not info["is_image"] and _variable_rate(container, video),
            )
        if audio is not None:
            info.update(audio_rate=audio.codec_context.sample_rate, audio_channels=audio.channels)
        return MediaInfo(has_video=video is not None, has_audio=audio is not None, **info)


def _check_range(
    path: str | Path, start_s: float | None, end_s: float | None, duration: float, slack: float
) -> tuple[float, float]:
    start = 0.0 if start_s is None else float(start_s)
    end = duration if end_s is None else float(end_s)
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
        raise InvalidRequest(f"{path}: invalid source range {start:g}-{end:g} s")
    if duration > 0 and end > duration + slack:
        raise InvalidRequest(
            f"{path}: source range {start:.3f}-{end:.3f} s is outside the media "
            f"(duration {duration:.3f} s)"
        )
    return start, min(end, duration) if duration > 0 else end


def analysis_size(width: int, height: int, aspect: float = 1.0, target: int = ANALYSIS_WIDTH):
    """Width and (even) height of analysis frames: `target` wide at the display aspect."""
    display_width = width * (aspect or 1.0)
    return target, max(2, 2 * round(target * height / display_width / 2))


def _grid(frame: av.VideoFrame) -> np.ndarray:
    """(3, rows, cols) float32 Y/U/V thumbnail in 0..1, cheap enough to run on every frame.

    Planar YUV is read in place (a band of rows, averaged across); anything else is
    scaled by swscale first.
    """
    rows, cols = GRID
    fmt = frame.format
    if not (fmt.name.startswith("yuv") and len(frame.planes) == 3 and not fmt.name.endswith("be")):
        frame = frame.reformat(width=cols, height=rows, format="yuv444p", interpolation="AREA")
        fmt = frame.format
    bits = fmt.components[0].bits
    dtype = np.dtype(np.uint8) if bits <= 8 else np.dtype("<u2")
    planes = []
    for plane in frame.planes:
        stride = plane.line_size // dtype.itemsize
        data = np.frombuffer(plane, dtype=dtype, count=stride * plane.height).reshape(-1, stride)
        width = plane.width // cols * cols
        if width == 0:  # plane narrower than the grid: let swscale do it
            return _grid(frame.reformat(width=cols, height=rows, format="yuv444p"))
        band = data[(np.arange(rows) * plane.height + plane.height // 2) // rows, :width]
        planes.append(band.reshape(rows, cols, -1).mean(axis=2, dtype=np.float32))
    return np.stack(planes) / float((1 << bits) - 1)


def _rgb(frame: av.VideoFrame, size: tuple[int, int]) -> np.ndarray:
    scaled = frame.reformat(width=size[0], height=size[1], format="rgb24", interpolation="AREA")
    return scaled.to_ndarray()


def frame_differences(grids: np.ndarray) -> np.ndarray:
    """Mean absolute difference (0..1) between consecutive thumbnails; luma counts twice."""
    if len(grids) < 2:
        return np.zeros(0, np.float32)
    delta = np.abs(np.diff(grids, axis=0))
    return (2 * delta[:, 0] + delta[:, 1] + delta[:, 2]).mean(axis=(1, 2)) / 4


def pick_cuts(diffs: np.ndarray, min_gap: int = MIN_SHOT_FRAMES) -> list[int]:
    """Indices i where the change from frame i to i+1 is a cut.

    Adaptive: a cut must exceed CUT_MIN_DIFF and CUT_RATIO times the median of the
    surrounding differences, so fast motion (uniformly large differences) is not a cut
    but a still shot's small flicker does not hide one either.
    """
    cuts: list[int] = []
    for i in np.flatnonzero(diffs >= CUT_MIN_DIFF):
        around = np.concatenate(
            (diffs[max(0, i - CUT_WINDOW) : i], diffs[i + 1 : i + 1 + CUT_WINDOW])
        )
        if around.size and diffs[i] < CUT_RATIO * float(np.median(around)):
            continue
        if cuts and i - cuts[-1] < min_gap:  # too close: keep the larger change
            if diffs[i] > diffs[cuts[-1]]:
                cuts[-1] = int(i)
            continue
        cuts.append(int(i))
    return cuts


class _Decoder:
    """One open video stream, decoded forward from wherever it was last sought to."""

    def __init__(self, path: str | Path, container: av.container.InputContainer) -> None:
        self.path = path
        self.container = container
        self.stream = _video_stream(path, container)
        self.stream.thread_type = "AUTO"
        self.ctx = self.stream.codec_context
        # Analysis frames are tiny: the in-loop deblocking filter is not worth its time.
        self.ctx.options = {"skip_loop_filter": "all"}
        self.origin = _origin(self.stream)
        self.duration = _duration(container, self.stream)
        self.rate = _rate(self.stream) or 25.0
        self.frame_s = 1.0 / self.rate
        if not self.ctx.width or not self.ctx.height:
            raise MediaError(f"{path}: not a readable picture or video (no frame size)")
        sar = self.stream.sample_aspect_ratio
        self.size = analysis_size(self.ctx.width, self.ctx.height, float(sar) if sar else 1.0)
        self.fresh = True

    def decoded(
        self,
        start: float,
        exact: Sequence[float] = (),
        skip_nonref: bool = True,
        seek_to: float | None = None,
    ) -> Iterator[tuple[float, av.VideoFrame]]:
        """(time, frame) in display order from `start` on, after seeking to the keyframe
        before `seek_to` (default: start). With skip_nonref, frames no other frame refers
        to are not decoded, except within a frame and a half of a time in `exact`."""
        at = start if seek_to is None else seek_to
        if at > 0 or not self.fresh:  # a fresh file needs no seek to its start
            offset = int((self.origin + at) / self.stream.time_base)
            self.container.seek(offset, stream=self.stream, backward=True)
        self.fresh = False
        self.ctx.skip_frame = "DEFAULT"
        t = start
        for packet in self.container.demux(self.stream):
            if skip_nonref:
                self.ctx.skip_frame = "DEFAULT" if self._near(packet, exact) else "NONREF"
            for frame in packet.decode():
                t = frame.time - self.origin if frame.time is not None else t + self.frame_s
                if t >= start - self.frame_s / 2:
                    yield t, frame

    def keyframes(self, start: float, end: float) -> list[float]:
        """Keyframe times around [start, end], from the packets alone (no decoding)."""
        offset = int((self.origin + start) / self.stream.time_base)
        self.container.seek(offset, stream=self.stream, backward=True)
        self.fresh = False
        keys = []
        for packet in self.container.demux(self.stream):
            if packet.pts is None:
                continue
            t = float(packet.pts * self.stream.time_base) - self.origin
            if t > end:
                break
            if packet.is_keyframe:
                keys.append(t)
        return sorted(keys)

    def _near(self, packet: av.Packet, times: Sequence[float]) -> bool:
        if packet.pts is None or not times:
            return False
        t = float(packet.pts * self.stream.time_base) - self.origin
        i = bisect.bisect_left(times, t - self.frame_s * 1.5)
        return i < len(times) and times[i] <= t + self.frame_s * 1.5

    def check_reached(self, last: float | None, end: float) -> None:
        """A file whose frames stop well before the range's end is truncated or damaged."""
        if last is not None and last >= end - 2 * self.frame_s - 1e-3:
            return
        shown = "no frame" if last is None else f"the last frame at {last:.3f} s"
        raise MediaError(
            f"{self.path}: the video stops early ({shown}, expected frames up to {end:.3f} s); "
            "the file may be truncated or damaged"
        )


class _Sampler:
    """Picks for each target time the frame on screen then: the last one at or before it."""

    def __init__(self, targets: Sequence[float], size: tuple[int, int]) -> None:
        self.targets = list(targets)
        self.size = size
        self.picked: list[tuple[float, np.ndarray]] = []
        self.last: tuple[float, av.VideoFrame] | None = None

    @property
    def next_target(self) -> float | None:
        return self.targets[len(self.picked)] if len(self.picked) < len(self.targets) else None

    def feed(self, t: float, frame: av.VideoFrame) -> None:
        while (target := self.next_target) is not None and t > target + 1e-6:
            self._pick(self.last or (t, frame))
        self.last = (t, frame)

    def finish(self) -> tuple[np.ndarray, tuple[float, ...]]:
        """The targets left fall in the last frame's span."""
        while self.next_target is not None and self.last is not None:
            self._pick(self.last)
        if not self.picked:
            return np.zeros((0, self.size[1], self.size[0], 3), np.uint8), ()
        return np.stack([rgb for _, rgb in self.picked]), tuple(t for t, _ in self.picked)

    def _pick(self, shown: tuple[float, av.VideoFrame]) -> None:
        self.picked.append((round(shown[0], 6), _rgb(shown[1], self.size)))


def _uniform_times(start: float, end: float, n: int) -> list[float]:
    """Centres of n equal slices: never the very first frame, which is often a cut."""
    return [start + (i + 0.5) * (end - start) / n for i in range(n)]


def decode_frames(
    path: str | Path, start_s: float | None = None, end_s: float | None = None, n: int = 10
) -> tuple[np.ndarray, tuple[float, ...]]:
    """n frames spread uniformly over the range, (n, H, W, 3) uint8 at analysis size
    (ANALYSIS_WIDTH wide), and their media times.

    Seeks only where a target's keyframe lies beyond the frames already decoded.
    """
    with _opened(path) as container:
        dec = _Decoder(path, container)
        start, end = _check_range(path, start_s, end_s, dec.duration, dec.frame_s)
        sampler = _Sampler(_uniform_times(start, end, n), dec.size)
        keyframes = dec.keyframes(start, end) if n else []
        frames: Iterator[tuple[float, av.VideoFrame]] = iter(())
        sought: float | None = None
        while (target := sampler.next_target) is not None:
            key = bisect.bisect_right(keyframes, target) - 1
            last = sampler.last
            seek = last is None or (key >= 0 and keyframes[key] > last[0])
            # One seek per target: a seek that lands early (inexact index) decodes forward.
            if seek and sought != target:
                frames = dec.decoded(start, sampler.targets, seek_to=target)
                sought = target
            step = next(frames, None)
            if step is None or step[0] >= end:
                dec.check_reached(last[0] if last else None, end)
                break
            sampler.feed(*step)
        return sampler.finish()


def _refine(dec: _Decoder, t0: float, t1: float) -> float:
    """Time of the cut between two decoded frames with skipped frames between: decode all."""
    times, grids = [], []
    for t, frame in dec.decoded(t0, skip_nonref=False):
        if t > t1 + dec.frame_s / 2:
            break
        times.append(t)
        grids.append(_grid(frame))
    if len(grids) < 2:
        return t1
    return times[int(np.argmax(frame_differences(np.stack(grids)))) + 1]


def _analyse(dec: _Decoder, start: float, end: float, n: int):
    """One pass over the range, decoding reference frames and the sampled ones: sampled
    frames and their times, cut times (seconds from `start`) and motion energy."""
    sampler = _Sampler(_uniform_times(start, end, n), dec.size)
    times: list[float] = []
    grids: list[np.ndarray] = []
    for t, frame in dec.decoded(start, sampler.targets):
        if t >= end - 1e-6:
            break
        times.append(t)
        grids.append(_grid(frame))
        sampler.feed(t, frame)
    else:
        dec.check_reached(times[-1] if times else None, end)
    frames, frame_times = sampler.finish()
    diffs = frame_differences(np.stack(grids)) if grids else np.zeros(0, np.float32)
    gaps = np.maximum(np.diff(np.asarray(times)) / dec.frame_s, 1.0)  # frames apart
    found = pick_cuts(diffs)
    cuts = []
    for i in found:
        t = times[i + 1]
        if gaps[i] > 2.5:  # more than one skipped frame between: which one is the cut?
            t = _refine(dec, times[i], t)
        cuts.append(round(t - start, 6))
    still = np.ones(len(diffs), bool)
    still[found] = False
    per_frame = np.clip(diffs / gaps, 0.0, 1.0)[still]
    motion = float(per_frame.mean()) if per_frame.size else 0.0
    return frames, frame_times, tuple(cuts), motion


def detect_cuts(
    path: str | Path, start_s: float | None = None, end_s: float | None = None
) -> tuple[float, ...]:
    """Scene cuts in the range, in seconds from its start (frame accurate)."""
    return visual_input(path, start_s, end_s, n_frames=0).cut_times_s


def visual_input(
    path: str | Path, start_s: float | None = None, end_s: float | None = None, n_frames: int = 10
) -> VisualInput:
    """What the describe stage sees of a source range (or of an image file)."""
    if is_image(path):
        return _image_input(path)
    with _opened(path) as container:
        dec = _Decoder(path, container)
        start, end = _check_range(path, start_s, end_s, dec.duration, dec.frame_s)
        frames, times, cuts, motion = _analyse(dec, start, end, n_frames)
        return VisualInput(
            frames=frames,
            frame_times_s=times,
            duration_s=round(end - start, 6),
            cut_times_s=cuts,
            motion_energy=round(motion, 6),
            source="video",
        )


def _image_input(path: str | Path) -> VisualInput:
    with _opened(path) as container:
        dec = _Decoder(path, container)
        for frame in container.decode(dec.stream):
            rgb = _rgb(frame, dec.size)
            return VisualInput(
                frames=rgb[None], frame_times_s=(0.0,), duration_s=0.0, source="image"
            )
    raise MediaError(f"{path}: the image holds no picture")


def decode_audio(
    path: str | Path,
    start_s: float | None = None,
    end_s: float | None = None,
    rate: int = 16000,
    channels: int = 1,
) -> np.ndarray:
    """The range's audio as float32 at `rate`: shape (n,) for mono, (n, 2) for stereo, with
    n = round(duration * rate) exactly (silence where the stream has none)."""
    if channels not in (1, 2):
        raise InvalidRequest(f"channels must be 1 or 2, not {channels}")
    with _opened(path) as container:
        if not container.streams.audio:
            raise MediaError(f"{path}: no audio stream")
        stream = container.streams.audio[0]
        origin = _origin(stream)
        start, end = _check_range(
            path, start_s, end_s, _duration(container, stream), 1.0 / stream.rate
        )
        resampler = av.AudioResampler(
            format="fltp", layout="mono" if channels == 1 else "stereo", rate=rate
        )
        if start > 0:
            container.seek(int((origin + start) / stream.time_base), stream=stream)
        chunks: list[np.ndarray] = []
        first: float | None = None
        for frame in container.decode(stream):
            t = (frame.time if frame.time is not None else origin) - origin
            if first is None:
                first = t
            chunks.extend(out.to_ndarray() for out in resampler.resample(frame))
            if t >= end:
                break
        chunks.extend(out.to_ndarray() for out in resampler.resample(None))
        audio = np.concatenate(chunks, axis=1) if chunks else np.zeros((channels, 0), np.float32)
        total = round((end - start) * rate)
        skip = round((start - (first or 0.0)) * rate)
        if skip < 0:
            audio = np.pad(audio, ((0, 0), (-skip, 0)))
            skip = 0
        audio = audio[:, skip : skip + total]
        if audio.shape[1] < total - rate // 10:
            raise MediaError(
                f"{path}: the audio stops {(total - audio.shape[1]) / rate:.2f} s early; "
                "the file may be truncated or damaged"
            )
        audio = np.pad(audio, ((0, 0), (0, total - audio.shape[1]))).astype(np.float32)
        return audio[0] if channels == 1 else np.ascontiguousarray(audio.T)
