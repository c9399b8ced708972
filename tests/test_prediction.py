# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""birefnet_hf.prediction: the one quantisation rule (the authors' truncation) and the one driver that the pipeline,
the segment API and command, examples/evaluate_dis.py and examples/run_demo.py all go through."""

from __future__ import annotations

import runpy
from pathlib import Path

import datasets
import numpy as np
import PIL.Image
import pytest
import torch
from torchvision.transforms import ToPILImage
from transformers import pipeline

from birefnet_hf import BiRefNetForImageSegmentation, BiRefNetImageProcessorPil, remove_background, segment
from birefnet_hf.chunked_resize import resize_logits_to_probabilities
from birefnet_hf.prediction import model_device_and_dtype, predict_mattes, quantize_probabilities

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_example(name: str) -> dict:
    """The globals of examples/<name>.py, run as a module (not as __main__)."""
    return runpy.run_path(str(REPO_ROOT / "examples" / f"{name}.py"), run_name=f"prediction_test_{name}")


# ----------------------------------------------------------------------------------------------- the rule


def test_quantisation_truncates_at_hand_picked_values():
    below = np.nextafter(np.float32(1 / 255), np.float32(0))  # the largest float32 under 1/255
    values = torch.tensor(
        [0.0, below, 1 / 255, 0.5 / 255, 1.5 / 255, 0.5, 127.5 / 255, 128 / 255, 254.99 / 255, 1.0],
        dtype=torch.float32,
    )
    assert quantize_probabilities(values).tolist() == [0, 0, 1, 0, 1, 127, 127, 128, 254, 255]
    # rounding would give 1, 2, 128 and 255 at 0.5/255, 1.5/255, 0.5 and 254.99/255: the rule is truncation
    assert quantize_probabilities(values).dtype == torch.uint8


def test_quantisation_clamps_and_works_in_float32():
    assert quantize_probabilities(torch.tensor([-1e-6, 1.0 + 1e-6, 2.0])).tolist() == [0, 255, 255]
    half = torch.tensor([0.25, 0.75], dtype=torch.bfloat16)
    assert quantize_probabilities(half).tolist() == [63, 191]  # 63.75 and 191.25, computed in float32
    with pytest.raises(TypeError, match="floating-point"):
        quantize_probabilities(torch.tensor([1, 2]))


def test_quantisation_is_what_the_authors_save_with_topilimage():
    """The authors save predictions with torchvision's ToPILImage; the rule reproduces it on every value."""
    probabilities = torch.rand(1, 37, 53, generator=torch.Generator().manual_seed(0))
    probabilities[0, 0, :6] = torch.tensor([0.0, 1.0, 0.5, 1 / 255, 2 / 255, 254.5 / 255])
    expected = np.asarray(ToPILImage()(probabilities))
    assert np.array_equal(quantize_probabilities(probabilities[0]).numpy(), expected)


def test_chunked_resize_quantises_with_the_rule():
    logits = torch.randn(16, 12, generator=torch.Generator().manual_seed(1)) * 3
    as_float = resize_logits_to_probabilities(logits, (45, 70), output="float")
    as_uint8 = resize_logits_to_probabilities(logits, (45, 70), output="uint8", chunk_elements=300)
    assert torch.equal(as_uint8, quantize_probabilities(as_float))


# --------------------------------------------------------------------------------------------- the driver


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir_64):
    """The tiny random pvt_v2_b0 model with a 64x64 processor (conftest); every driver below runs the PIL backend
    (the segment command loads it with `backend="pil"`, the others are given it)."""
    return tiny_model_dir_64


@pytest.fixture(scope="module")
def photo() -> PIL.Image.Image:
    rng = np.random.default_rng(3)
    coarse = PIL.Image.fromarray((rng.random((5, 7, 3)) * 255).astype(np.uint8))
    return coarse.resize((70, 45), PIL.Image.BICUBIC)


def test_predict_mattes_groups_sizes_and_keeps_order(model_dir, photo):
    model = BiRefNetForImageSegmentation.from_pretrained(model_dir).eval()
    processor = BiRefNetImageProcessorPil(size={"height": 64, "width": 64})
    small = photo.resize((20, 30))
    together = predict_mattes(model, processor, [photo, small, photo], size={"longest_edge": 64})
    assert [matte.shape for matte in together] == [(45, 70), (30, 20), (45, 70)]
    assert all(matte.dtype == np.uint8 for matte in together)
    alone = predict_mattes(model, processor, [small], size={"longest_edge": 64})
    assert np.array_equal(together[1], alone[0]) and np.array_equal(together[0], together[2])
    resized = predict_mattes(model, processor, [photo], target_sizes=[(10, 12)])
    assert resized[0].shape == (10, 12)
    with pytest.raises(ValueError, match="target sizes"):
        predict_mattes(model, processor, [photo], target_sizes=[(10, 12), (3, 4)])
    assert model_device_and_dtype(model) == (torch.device("cpu"), torch.float32)
    assert model_device_and_dtype(object()) == (torch.device("cpu"), torch.float32)


def test_the_four_drivers_give_identical_mattes(model_dir, photo, tmp_path, capsys):
    """The background-removal pipeline, remove_background, `birefnet-hf segment`, examples/evaluate_dis.py and
    examples/run_demo.py write the same 8-bit matte for one model and one photo: the truncated float matte."""
    model = BiRefNetForImageSegmentation.from_pretrained(model_dir).eval()
    processor = BiRefNetImageProcessorPil(size={"height": 64, "width": 64})
    with torch.inference_mode():
        logits = model(**processor(photo, return_tensors="pt")).logits
    soft = processor.post_process_alpha(logits, [(45, 70)])[0]
    expected = quantize_probabilities(soft).numpy()
    assert len(np.unique(expected)) > 5  # a real soft matte, not a constant

    mattes = {}
    remover = pipeline("background-removal", model=model, image_processor=processor)
    mattes["pipeline"] = np.asarray(remover(photo)["matte"])
    mattes["remove_background"] = np.asarray(remove_background(photo, model=model, processor=processor).matte)

    photos = tmp_path / "photos"
    photos.mkdir()
    photo.save(photos / "photo.png")
    assert segment.main([str(photos), "-m", str(model_dir), "-o", str(tmp_path / "out"), "-f", "alpha"]) == 0
    capsys.readouterr()
    mattes["segment"] = np.asarray(PIL.Image.open(tmp_path / "out" / "photo.png"))

    evaluate_dis = load_example("evaluate_dis")
    predictor = evaluate_dis["ModelPredictor"](str(model_dir), 64, "cpu", "float32", "pil")
    mattes["evaluate_dis"] = predictor.predict([photos / "photo.png"], [(45, 70)])[0]

    run_demo = load_example("run_demo")
    mask = PIL.Image.fromarray((expected > 127).astype(np.uint8) * 255)
    dataset = datasets.Dataset.from_dict({"image": [photo], "mask": [mask]}).cast_column(
        "image", datasets.Image()
    )
    dataset = dataset.cast_column("mask", datasets.Image())
    _, kept = run_demo["predict_and_score"](model, processor, dataset, 1, {0}, torch.device("cpu"))
    mattes["run_demo"] = kept[0]

    for name, matte in mattes.items():
        assert matte.dtype == np.uint8 and matte.shape == (45, 70), name
        assert np.array_equal(matte, expected), name
