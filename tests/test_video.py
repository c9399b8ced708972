# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""`birefnet-hf video` / `remove_video_background`: every output kind decoded back (alpha, frame count, timing,
audio), composites, temporal smoothing, errors and atomic writes; a generated 4-frame clip and a tiny random model."""

from __future__ import annotations

import shutil
from fractions import Fraction

import numpy as np
import PIL.Image
import pytest

from birefnet_hf import BiRefNetImageProcessor, cli
from birefnet_hf.cutout import estimate_foreground
from birefnet_hf.segment import load_model_and_processor, remove_background

av = pytest.importorskip("av")
from birefnet_hf import video  # noqa: E402

FRAMES, WIDTH, HEIGHT, FPS = 4, 64, 48, 10


def _frame_pixels(index: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    image[...] = (30, 90, 160)
    image[height // 4 : 3 * height // 4, 8 + 6 * index : 28 + 6 * index] = (230, 200, 40)  # a moving block
    return image


def make_clip(
    path, frames=FRAMES, width=WIDTH, height=HEIGHT, audio=True, codec="libx264", pix_fmt="yuv420p"
):
    """A short clip: a yellow block moving over blue, with a 440 Hz mono AAC track (or none)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if audio:
            sound = container.add_stream("aac", rate=44100)
            sound.codec_context.layout = "mono"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(_frame_pixels(index, width, height), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if audio:
            samples = int(44100 * frames / FPS)
            wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 44100)).astype(np.float32)[None]
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(wave[:, start : start + 1024]), "fltp", "mono"
                )
                chunk.sample_rate, chunk.pts, chunk.time_base = 44100, start, Fraction(1, 44100)
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
    return path


def decode(path):
    """(frames as RGBA arrays, frame pts, stream summary) of a video file; VP9 through libvpx to get its alpha."""
    with av.open(str(path)) as container:
        streams = [(s.type, s.codec_context.name) for s in container.streams]
        stream = container.streams.video[0]
        decoder = av.CodecContext.create("libvpx-vp9", "r") if stream.codec_context.name == "vp9" else None
        frames, pts = [], []
        for packet in container.demux(stream):
            if decoder is not None:
                decoded = decoder.decode(packet) if packet.size else []
            else:
                decoded = packet.decode()
            for frame in decoded:
                frames.append(frame.to_ndarray(format="rgba"))
                pts.append(float(frame.pts * frame.time_base))
                formats = frame.format.name
        return frames, pts, streams, formats


def audio_seconds(path):
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / stream.codec_context.sample_rate


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_birefnet_video")
    shutil.copytree(tiny_model_dir, folder, dirs_exist_ok=True)
    BiRefNetImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def loaded(model_dir):
    return load_model_and_processor(model_dir, device="cpu")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


@pytest.fixture(scope="module")
def expected_mattes(clip, loaded):
    """The mattes `remove_background` gives for the clip's decoded frames, one by one, and the frames' foreground
    colours estimated from them (what alpha, png and composite outputs carry)."""
    model, processor = loaded
    with av.open(str(clip)) as container:
        images = [frame.to_image() for frame in container.decode(video=0)]
    assert len(images) == FRAMES
    mattes = [
        np.asarray(result.matte) for result in remove_background(images, model=model, processor=processor)
    ]
    foregrounds = [
        estimate_foreground(np.asarray(image), matte) for image, matte in zip(images, mattes, strict=True)
    ]
    return images, mattes, foregrounds


@pytest.fixture(scope="module")
def png_sequence(clip, loaded, tmp_path_factory):
    model, processor = loaded
    output = tmp_path_factory.mktemp("png") / "frames"
    result = video.remove_video_background(clip, output, model, processor=processor, batch_size=3)
    return output, result


def test_png_sequence_is_the_per_frame_matte_with_audio(png_sequence, expected_mattes):
    output, result = png_sequence
    images, mattes, foregrounds = expected_mattes
    assert result.output_format == "png" and result.frames == FRAMES and result.audio == "copied"
    names = sorted(path.name for path in output.iterdir())
    assert names == ["audio.mka"] + [f"frame_{i:06d}.png" for i in range(FRAMES)]
    assert len({matte.tobytes() for matte in mattes}) > 1  # the frames' mattes differ, so order is checked
    for index, (matte, foreground) in enumerate(zip(mattes, foregrounds, strict=True)):
        with PIL.Image.open(output / f"frame_{index:06d}.png") as frame:
            assert frame.mode == "RGBA" and frame.size == (WIDTH, HEIGHT)
            rgba = np.asarray(frame)
        np.testing.assert_array_equal(rgba[..., 3], matte)  # batched (3 + 1) == one by one
        assert np.abs(rgba[..., :3].astype(int) - foreground).max() <= 1  # refined edge colours (default)
    assert any(
        np.abs(f.astype(int) - np.asarray(i)).max() > 8 for f, i in zip(foregrounds, images, strict=True)
    )
    assert audio_seconds(output / "audio.mka") == pytest.approx(FRAMES / FPS, abs=0.05)
    assert not [p for p in output.parent.iterdir() if p.name.startswith(".")]  # no staging folder left


@pytest.mark.parametrize(
    "name, pix_fmt, audio_codec, mean_error, max_error",
    # VP9 is lossy; ProRes 4444 keeps a 16-bit alpha: only swscale's 8 -> 10 bit rounding (at most 1) remains
    [("alpha.webm", "yuva420p", "opus", 2.0, 16), ("alpha.mov", "yuva444p12le", "aac", 1.0, 1)],
)
def test_alpha_videos_keep_alpha_frames_timing_and_audio(
    name, pix_fmt, audio_codec, mean_error, max_error, clip, loaded, expected_mattes, tmp_path
):
    model, processor = loaded
    images, mattes, foregrounds = expected_mattes
    result = video.remove_video_background(clip, tmp_path / name, model, processor=processor, batch_size=4)
    assert result.frames == FRAMES and result.output_format == "alpha"
    frames, pts, streams, decoded_format = decode(tmp_path / name)
    assert decoded_format == pix_fmt  # VP9 with its alpha plane (WebM), ProRes 4444 with alpha (MOV)
    assert len(frames) == FRAMES
    assert pts == pytest.approx([i / FPS for i in range(FRAMES)], abs=1e-3)
    assert ("audio", audio_codec) in streams  # AAC re-encoded to Opus for WebM, copied into MOV
    assert result.audio == ("re-encoded (libopus)" if audio_codec == "opus" else "copied")
    assert audio_seconds(tmp_path / name) == pytest.approx(FRAMES / FPS, abs=0.05)
    for frame, foreground, matte in zip(frames, foregrounds, mattes, strict=True):
        error = np.abs(frame[..., 3].astype(int) - matte.astype(int))
        assert error.mean() <= mean_error and error.max() <= max_error
        assert np.abs(frame[..., :3].astype(int) - foreground.astype(int)).mean() < 6
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left


def test_matte_video_lossless_mkv_via_cli(clip, model_dir, png_sequence, tmp_path, capsys):
    output = tmp_path / "matte.mkv"
    code = cli.main(["video", str(clip), "-o", str(output), "-m", str(model_dir), "--format", "matte",
                     "--no-audio", "--no-progress"])  # fmt: skip
    assert code == 0
    assert f"wrote {FRAMES} frame(s)" in capsys.readouterr().out
    frames, _, streams, decoded_format = decode(output)
    assert decoded_format == "gray" and streams == [("video", "ffv1")]  # --no-audio
    for index, frame in enumerate(frames):
        with PIL.Image.open(png_sequence[0] / f"frame_{index:06d}.png") as png:
            np.testing.assert_array_equal(frame[..., 0], np.asarray(png)[..., 3])  # FFV1 is lossless


def test_composite_on_colour_and_on_a_looped_background_video(clip, loaded, expected_mattes, tmp_path):
    model, processor = loaded
    images, mattes, foregrounds = expected_mattes
    result = video.remove_video_background(
        clip, tmp_path / "green.mp4", model, processor=processor, background="#00ff00"
    )
    assert result.output_format == "composite"
    frames, _, streams, _ = decode(tmp_path / "green.mp4")
    assert ("audio", "aac") in streams and len(frames) == FRAMES
    green = np.broadcast_to(np.array([0, 255, 0], np.uint8), (HEIGHT, WIDTH, 3))
    for frame, foreground, matte in zip(frames, foregrounds, mattes, strict=True):
        expected = video.composite(foreground, matte, green).astype(int)
        assert np.abs(frame[..., :3].astype(int) - expected).mean() < 6

    backdrop = make_clip(tmp_path / "backdrop.mkv", frames=2, width=32, height=32, audio=False, codec="ffv1",
                         pix_fmt="yuv444p")  # fmt: skip
    output = tmp_path / "on_video"
    video.remove_video_background(clip, output, model, processor=processor, background=str(backdrop))
    backdrop_frames = [np.asarray(video._cover(PIL.Image.fromarray(_frame_pixels(i, 32, 32)), WIDTH, HEIGHT))
                       for i in range(2)]  # fmt: skip
    for index, (foreground, matte) in enumerate(zip(foregrounds, mattes, strict=True)):
        with PIL.Image.open(output / f"frame_{index:06d}.png") as png:
            assert png.mode == "RGB"
            expected = video.composite(foreground, matte, backdrop_frames[index % 2]).astype(int)
            assert np.abs(np.asarray(png).astype(int) - expected).max() <= 3  # the background loops


def test_temporal_smoother_damps_flicker_but_follows_motion():
    rng = np.random.default_rng(0)
    base = np.full((32, 32), 128.0)
    flicker = [np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8) for _ in range(20)]
    smoother = video.TemporalMatteSmoother(0.7)
    smoothed = [smoother(matte) for matte in flicker]
    raw_change = np.mean(
        [np.abs(a.astype(int) - b).mean() for a, b in zip(flicker[1:], flicker[:-1], strict=True)]
    )
    smooth_change = np.mean(
        [np.abs(a.astype(int) - b).mean() for a, b in zip(smoothed[6:], smoothed[5:-1], strict=True)]
    )
    assert smooth_change < 0.5 * raw_change
    step = np.zeros((32, 32), np.uint8)
    step[:, 16:] = 255  # the object moved in: no ghost of the empty frame
    np.testing.assert_array_equal(smoother(step)[:, 16:], 255)
    assert video.TemporalMatteSmoother(0.0)(flicker[3]) is not None
    np.testing.assert_array_equal(video.TemporalMatteSmoother(0.0)(flicker[3]), flicker[3])
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        video.TemporalMatteSmoother(1.0)


def test_temporal_smoothing_in_a_video(clip, loaded, png_sequence, expected_mattes, tmp_path):
    model, processor = loaded
    output = tmp_path / "smooth"
    video.remove_video_background(clip, output, model, processor=processor, temporal_smoothing=0.8,
                                  motion_threshold=1.0, refine_foreground=False)  # fmt: skip
    for index, image in enumerate(expected_mattes[0]):  # without refinement: the frames' own colours
        with PIL.Image.open(output / f"frame_{index:06d}.png") as frame:
            np.testing.assert_array_equal(np.asarray(frame)[..., :3], np.asarray(image))
    raw = [
        np.asarray(PIL.Image.open(png_sequence[0] / f"frame_{i:06d}.png"))[..., 3].astype(int)
        for i in range(FRAMES)
    ]
    smooth = [
        np.asarray(PIL.Image.open(output / f"frame_{i:06d}.png"))[..., 3].astype(int) for i in range(FRAMES)
    ]
    np.testing.assert_array_equal(smooth[0], raw[0])
    change = lambda maps: sum(np.abs(a - b).sum() for a, b in zip(maps[1:], maps[:-1], strict=True))  # noqa: E731
    assert change(smooth) < change(raw)


def test_usage_errors_name_the_problem(clip, model_dir, tmp_path, capsys):
    def run(*argv):
        code = cli.main(["video", *map(str, argv), "-m", str(model_dir), "--no-progress"])
        return code, capsys.readouterr().err

    code, err = run(clip, "-o", tmp_path / "out.mp4")
    assert code == 2 and "--format alpha cannot be written to 'out.mp4'" in err and ".webm" in err
    code, err = run(clip, "-o", tmp_path / "out.mp4", "--format", "composite")
    assert code == 2 and "needs --background" in err
    code, err = run(tmp_path / "missing.mp4", "-o", tmp_path / "out.webm")
    assert code == 1 and "missing.mp4" in err and "does not exist" in err
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    code, err = run(text, "-o", tmp_path / "out.webm")
    assert code == 1 and "notes.mp4" in err
    code, err = run(clip, "-o", tmp_path / "c.mp4", "--background", "no-such-colour")
    assert code == 1 and "'no-such-colour'" in err and "not a colour" in err
    assert not (tmp_path / "out.webm").exists() and not (tmp_path / "c.mp4").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    code, err = run(clip, "-o", tmp_path / "full")
    assert code == 1 and "not empty" in err and (tmp_path / "full" / "keep.txt").exists()


def test_a_failure_midway_leaves_the_previous_output(clip, loaded, tmp_path, monkeypatch):
    model, processor = loaded
    output = tmp_path / "out.webm"
    output.write_bytes(b"previous version")
    calls = []

    def failing(model, processor, images, size):
        calls.append(len(images))
        if len(calls) == 2:
            raise RuntimeError("simulated failure in the second batch")
        return [np.zeros((image.height, image.width), np.uint8) for image in images]

    monkeypatch.setattr(video, "_predict_frame_mattes", failing)
    with pytest.raises(RuntimeError, match="second batch"):
        video.remove_video_background(clip, output, model, processor=processor, batch_size=2)
    assert output.read_bytes() == b"previous version"
    with pytest.raises(RuntimeError, match="second batch"):
        calls.clear()
        video.remove_video_background(clip, tmp_path / "frames", model, processor=processor, batch_size=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.webm"]


def test_odd_frame_sizes_are_padded_for_h264(loaded, tmp_path):
    model, processor = loaded
    clip = make_clip(tmp_path / "odd.mkv", frames=2, width=33, height=21, audio=False, codec="ffv1",
                     pix_fmt="yuv444p")  # fmt: skip
    result = video.remove_video_background(clip, tmp_path / "odd.mp4", model, processor=processor,
                                           background="white")  # fmt: skip
    frames, _, _, _ = decode(tmp_path / "odd.mp4")
    assert result.width == 33 and len(frames) == 2 and frames[0].shape[:2] == (22, 34)
    assert result.audio is None  # the clip has no audio stream

    preview = video.remove_video_background(
        clip, tmp_path / "first.webm", model, processor=processor, max_frames=1
    )
    assert preview.frames == 1 and len(decode(tmp_path / "first.webm")[0]) == 1
