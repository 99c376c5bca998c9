"""engine.media on small clips made with ffmpeg: solid colour shots put the cuts at known
times, so frame accuracy is checked exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from bridge.errors import InvalidRequest, MediaError
from engine import media
from engine.bench.clips import synthetic_video

RATE = 30
FRAME = 1 / RATE
# red 1.0 s | blue 0.7 s | moving test pattern 1.0 s | green 0.8 s: cuts at 1.0, 1.7, 2.7
SHOTS = [("color=c=red", 1.0), ("color=c=blue", 0.7), ("testsrc2", 1.0), ("color=c=green", 0.8)]
CUTS = (1.0, 1.7, 2.7)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    made = {
        "h264": synthetic_video(d / "shots.mp4", SHOTS, audio_hz=440.0),
        # plain B-frames, no keyframe at cuts: two skipped frames between decoded ones
        "bframes": synthetic_video(
            d / "bframes.mp4", SHOTS,
            extra=["-x264-params", "bframes=3:b-pyramid=none:b-adapt=0:scenecut=0:keyint=250"],
        ),
        "10bit422": synthetic_video(d / "prores.mov", SHOTS, codec="prores_ks",
                                    pix_fmt="yuv422p10le"),
        "x264_10bit422": synthetic_video(d / "x264_422.mkv", SHOTS, pix_fmt="yuv422p10le"),
        # 30 fps for the red second, then a frame every 0.1 s: the cut is still at 1.0 s
        "vfr": synthetic_video(
            d / "vfr.mkv", SHOTS[:2], post_filter="setpts='if(lt(N,30),N/30,1+(N-30)/10)/TB'",
            extra=["-fps_mode", "vfr"],
        ),
        "faststart": synthetic_video(d / "fast.mp4", SHOTS, extra=["-movflags", "+faststart"]),
    }  # fmt: skip
    return made


def near(found: tuple[float, ...], expected: tuple[float, ...], tol: float = FRAME) -> bool:
    return len(found) == len(expected) and all(
        abs(f - e) <= tol + 1e-6 for f, e in zip(found, expected, strict=True)
    )


def test_cuts_within_one_frame(clips: dict[str, Path]) -> None:
    for name in ("h264", "bframes", "10bit422", "x264_10bit422"):
        seen = media.visual_input(clips[name])
        assert near(seen.cut_times_s, CUTS), (name, seen.cut_times_s)
    assert near(media.detect_cuts(clips["h264"], 0.5, 3.0), (0.5, 1.2, 2.2))


def test_frames_are_uniform_and_downscaled(clips: dict[str, Path]) -> None:
    frames, times = media.decode_frames(clips["h264"], 0.0, 3.5, 7)
    assert frames.shape == (7, 90, 160, 3) and frames.dtype == np.uint8
    assert near(times, tuple(0.25 + 0.5 * i for i in range(7)))
    red, blue, green = frames[1].mean((0, 1)), frames[2].mean((0, 1)), frames[6].mean((0, 1))
    assert red[0] > 200 > red[2] and blue[2] > 200 > blue[0] and green[1] > 100 > green[2]
    seen = media.visual_input(clips["h264"], 1.2, 3.2, n_frames=4)
    assert seen.frames.shape == (4, 90, 160, 3)
    assert near(seen.frame_times_s, (1.45, 1.95, 2.45, 2.95))  # media times
    assert near(seen.cut_times_s, (0.5, 1.5))  # from the range start
    assert seen.duration_s == pytest.approx(2.0) and seen.source == "video"
    for name in ("bframes", "10bit422"):
        assert (
            np.abs(media.decode_frames(clips[name], 0, 3.5, 7)[0].astype(int) - frames).mean() < 8
        )


def test_motion_energy(clips: dict[str, Path]) -> None:
    still = media.visual_input(clips["h264"], 0.0, 1.0).motion_energy
    moving = media.visual_input(clips["h264"], 1.75, 2.65).motion_energy
    whole = media.visual_input(clips["h264"]).motion_energy
    assert still < 0.002 < moving <= 1.0
    assert 0.0 < whole < moving  # the cuts themselves are not motion


def test_variable_frame_rate(clips: dict[str, Path]) -> None:
    info = media.probe(clips["vfr"])
    assert info.variable_frame_rate and info.duration_s == pytest.approx(3.1, abs=0.1)
    seen = media.visual_input(clips["vfr"])
    assert near(seen.cut_times_s, (1.0,))
    assert seen.frame_times_s[5] == pytest.approx(1.6)  # on screen at 1.67 s: a frame per 0.1 s


def test_probe(clips: dict[str, Path]) -> None:
    info = media.probe(clips["h264"])
    assert (info.width, info.height, info.rate, info.codec) == (320, 180, 30, "h264")
    assert info.duration_s == pytest.approx(3.5, abs=0.05) and not info.variable_frame_rate
    assert info.has_audio and info.audio_rate == 48000
    assert media.probe(clips["10bit422"]).pix_fmt == "yuv422p10le"


def test_audio(clips: dict[str, Path]) -> None:
    mono = media.decode_audio(clips["h264"], 1.0, 2.5, rate=16000)
    assert mono.shape == (24000,) and mono.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(mono))
    assert np.argmax(spectrum) * 16000 / len(mono) == pytest.approx(440, abs=2)
    stereo = media.decode_audio(clips["h264"], rate=22050, channels=2)
    assert stereo.shape == (round(3.5 * 22050), 2)
    with pytest.raises(MediaError, match="no audio stream"):
        media.decode_audio(clips["bframes"])


def test_images(tmp_path: Path, clips: dict[str, Path]) -> None:
    for suffix in ("png", "jpg"):
        picture = tmp_path / f"still.{suffix}"
        synthetic_video(picture, [("color=c=red", 0.04)], size=(640, 480), extra=["-frames:v", "1"],
                        codec="png" if suffix == "png" else "mjpeg",
                        pix_fmt="rgb24" if suffix == "png" else "yuvj420p")  # fmt: skip
        seen = media.visual_input(picture)
        assert seen.source == "image" and seen.frames.shape == (1, 120, 160, 3)
        assert seen.frame_times_s == (0.0,) and seen.frames[0, ..., 0].mean() > 200


def test_bad_input_is_a_clear_error(tmp_path: Path, clips: dict[str, Path], monkeypatch) -> None:
    cases = {
        "missing.mp4": None,
        "empty.mp4": b"",
        "text.mp4": b"this is not a video\n" * 50,
    }
    for name, data in cases.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
    messages = {}
    for name in cases:
        with pytest.raises(MediaError) as err:
            media.visual_input(tmp_path / name)
        messages[name] = err.value.message
        assert name in err.value.message
    assert "no such file" in messages["missing.mp4"] and "empty" in messages["empty.mp4"]
    with pytest.raises(MediaError, match="not a file"):
        media.probe(tmp_path)

    whole = clips["h264"].read_bytes()
    cut = tmp_path / "truncated.mp4"  # index at the end: nothing to read
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(MediaError, match="truncated.mp4: not a readable media file"):
        media.visual_input(cut)
    fast = clips["faststart"].read_bytes()
    cut_fast = tmp_path / "truncated_fast.mp4"  # index first, frames missing at the end
    cut_fast.write_bytes(fast[: len(fast) // 2])
    with pytest.raises(MediaError, match="truncated_fast.mp4: the video stops early"):
        media.visual_input(cut_fast)
    with pytest.raises(MediaError, match="stops early"):
        media.decode_frames(cut_fast, 0, 3.4, 5)

    sound = tmp_path / "sound.wav"
    soundfile.write(sound, np.zeros(8000, np.float32), 16000)
    with pytest.raises(MediaError, match="sound.wav: no video stream"):
        media.visual_input(sound)
    assert media.probe(sound).has_audio and not media.probe(sound).has_video

    monkeypatch.setattr(media, "MAX_FRAME_PIXELS", 320 * 180 - 1)
    with pytest.raises(MediaError, match="320x180 are too large"):
        media.visual_input(clips["h264"])


def test_ranges_outside_the_media(clips: dict[str, Path]) -> None:
    with pytest.raises(InvalidRequest, match=r"outside the media \(duration 3.5"):
        media.visual_input(clips["h264"], 2.0, 9.0)
    with pytest.raises(InvalidRequest, match="invalid source range"):
        media.decode_frames(clips["h264"], 2.0, 1.0)
    with pytest.raises(InvalidRequest):
        media.decode_audio(clips["h264"], -1.0, 1.0)


def test_pick_cuts_is_adaptive() -> None:
    calm = np.full(40, 0.01, np.float32)
    calm[10] = 0.3
    assert media.pick_cuts(calm) == [10]
    busy = np.full(40, 0.12, np.float32)  # fast motion: large but uniform differences
    busy[25] = 0.5
    assert media.pick_cuts(busy) == [25]
    flash = np.zeros(40, np.float32)
    flash[[20, 21]] = [0.4, 0.6]  # in and out of a one-frame flash: one change
    assert media.pick_cuts(flash) == [21]
    assert media.pick_cuts(np.zeros(0, np.float32)) == []
