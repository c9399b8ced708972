# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""birefnet_hf.cutout_options: one definition of the cut-out options for `birefnet-hf segment`,
`birefnet-hf segment-dataset` and the server; `segment-dataset` with cut-out options end to end."""

from __future__ import annotations

import argparse

import datasets
import numpy as np
import PIL.Image
import pytest

from birefnet_hf import bulk, cutout, segment
from birefnet_hf.cutout_options import (
    MatteOptions,
    add_cutout_arguments,
    apply_matte_options,
    cutout_settings,
    cutout_settings_from_args,
)


def _photo(seed: int, width: int = 48, height: int = 36) -> PIL.Image.Image:
    rng = np.random.default_rng(seed)
    return PIL.Image.fromarray((rng.random((4, 5, 3)) * 255).astype(np.uint8)).resize((width, height))


def _cutout_actions(parser: argparse.ArgumentParser) -> list[tuple]:
    (group,) = [group for group in parser._action_groups if group.title == "cut-out options"]
    return [(tuple(action.option_strings), action.dest, action.default, action.type) for action in group._group_actions]


def test_segment_and_segment_dataset_share_one_option_group():
    parser = argparse.ArgumentParser()
    add_cutout_arguments(parser)
    expected = _cutout_actions(parser)
    assert _cutout_actions(segment.build_parser()) == _cutout_actions(bulk.build_parser()) == expected
    flags = {flag for option_strings, *_ in expected for flag in option_strings}
    assert {"--threshold", "--background", "--dilate", "--erode", "--feather", "--alpha-matting", "--max-side",
            "--refine-crops", "--crop-size", "--no-refine-foreground"} == flags  # fmt: skip
    args = bulk.build_parser().parse_args(["--dataset", "d", "-m", "m", "-o", "o", "--feather", "3", "--max-side", "9"])
    settings = cutout_settings_from_args(args)
    assert settings.options == MatteOptions(feather=3) and settings.max_side == 9 and settings.refine_foreground
    with pytest.raises(SystemExit):
        bulk.build_parser().parse_args(["--dataset", "d", "-m", "m", "-o", "o", "--erode", "-1"])


@pytest.mark.parametrize(
    "kwargs, cli_message, http_message",
    [
        ({"threshold": 1.0}, "--threshold must be in [0, 1), got 1.0", "threshold must be in [0, 1)"),
        ({"background": "white", "output_format": "mask"}, "--background applies to --format rgba, not 'mask'",
         "background applies to format=rgba, not 'mask'"),
        ({"background": "not-a-colour"}, "--background: background 'not-a-colour' is not 'blur', a colour",
         "background: background 'not-a-colour' is not 'blur', a colour"),
        ({"crop_size": 64}, "--crop-size needs --refine-crops", "crop_size needs refine_crops"),
        ({"max_side": 0}, "--max-side must be a positive number of pixels", "max_side must be a positive number"),
        ({"dilate": -2}, "dilate must be a non-negative number of pixels", "dilate must be a non-negative"),
    ],
)  # fmt: skip
def test_bad_values_name_the_option_in_each_front_end(kwargs, cli_message, http_message):
    with pytest.raises(ValueError) as error:
        cutout_settings(**kwargs)
    assert cli_message in str(error.value)
    with pytest.raises(ValueError) as error:
        cutout_settings(**kwargs, command_line=False)
    assert http_message in str(error.value) and "--" not in str(error.value)


def test_the_server_form_never_opens_a_file_named_as_background(tmp_path):
    image_file = tmp_path / "secret.png"
    PIL.Image.new("RGB", (4, 4), (1, 2, 3)).save(image_file)
    assert isinstance(cutout_settings(background=str(image_file)).background, PIL.Image.Image)  # command line
    with pytest.raises(ValueError, match="is not 'blur', a colour"):
        cutout_settings(background=str(image_file), command_line=False)
    uploaded = PIL.Image.new("RGB", (4, 4))
    assert cutout_settings(background=uploaded, command_line=False).background is uploaded
    assert cutout_settings(background="#00ff00", command_line=False).background == (0, 255, 0)


def test_apply_matte_options_order_and_crop_predictor():
    image = _photo(0, 80, 60)
    matte = PIL.Image.fromarray(np.tile(np.linspace(0, 255, 80).astype(np.uint8), (60, 1)))
    finished = apply_matte_options(image, matte, MatteOptions(threshold=0.5, dilate=2, feather=3))
    binary = cutout.postprocess_matte(np.asarray(matte), threshold=0.5, dilate=2)
    np.testing.assert_array_equal(np.asarray(finished), cutout.postprocess_matte(binary, feather=3))

    calls = []

    def predict(crops, model_size):
        calls.append((len(crops), model_size))
        return [np.full((crop.height, crop.width), 255, np.uint8) for crop in crops]

    refined = apply_matte_options(image, matte, MatteOptions(refine_crops=True, crop_batch_size=4), predict, 40)
    assert calls and all(size == {"height": 64, "width": 64} for _, size in calls)  # 40 px crops: 64 px model input
    assert np.asarray(refined).mean() > np.asarray(matte).mean()  # the crops (all foreground) were blended in
    with pytest.raises(ValueError, match="crop predictor"):
        apply_matte_options(image, matte, MatteOptions(refine_crops=True), None, 40)


def test_segment_dataset_applies_the_cutout_options(tiny_model_dir_64, tmp_path, capsys):
    model_dir = tiny_model_dir_64
    photo = _photo(0)
    dataset = datasets.Dataset.from_dict(
        {"image": [photo], "file_name": ["one.jpg"]},
        features=datasets.Features({"image": datasets.Image(), "file_name": datasets.Value("string")}),
    )
    dataset.save_to_disk(str(tmp_path / "saved"))

    def run(name, *options):
        code = bulk.main(["--dataset", str(tmp_path / "saved"), "--name-column", "file_name", "-m", str(model_dir),
                          "-o", str(tmp_path / name), "--device", "cpu", "--no-progress", *options])  # fmt: skip
        return code, capsys.readouterr()

    code, captured = run("out", "-f", "alpha", "--max-side", "24", "--threshold", "0.5", "--dilate", "2")
    assert code == 0, captured.err
    model, processor = segment.load_model_and_processor(model_dir, device="cpu")
    plain = np.asarray(segment.remove_background(photo, model=model, processor=processor, max_side=24).matte)
    with PIL.Image.open(tmp_path / "out" / "one.png") as written:
        assert written.size == (24, 18)  # --max-side
        written = np.asarray(written)
    np.testing.assert_array_equal(written, cutout.postprocess_matte(plain, threshold=0.5, dilate=2))
    assert (written == 255).sum() > (plain > 127.5).sum()  # --dilate grew the thresholded foreground

    code, captured = run("bad", "-f", "mask", "--background", "white")
    assert code == 2 and "--background applies to --format rgba" in captured.err
    code, captured = run("bad", "--crop-size", "64")
    assert code == 2 and "--crop-size needs --refine-crops" in captured.err
    assert not (tmp_path / "bad").exists()  # nothing written on usage errors
