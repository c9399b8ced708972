# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Tests of BiRefNet's training objective (birefnet_hf/loss_birefnet.py) against direct computations of the paper's
formulas (Eq. 1-5) and of the authors' training code where it differs (BCE as a pixel mean, IoU summed over the
batch, SSIM loss (1 - SSIM) / 2, gradient BCE on sigmoids, region-level fine-tuning)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from birefnet_hf import BiRefNetConfig, BiRefNetForImageSegmentation
from birefnet_hf.loss_birefnet import BiRefNetLoss, gaussian_window, iou_loss, ssim

PIXEL_TERMS = ("bce", "iou", "ssim", "mae")


def _maps(seed: int = 0, batch: int = 2, size: int = 24):
    """Logits in a moderate range and a soft mask in [0, 1] with some exact 0/1 pixels, in float64 for references."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, 1, size, size, generator=generator, dtype=torch.float64) * 2
    target = (torch.rand(batch, 1, size, size, generator=generator, dtype=torch.float64) > 0.6).double()
    target[:, :, : size // 3] = torch.rand(
        batch, 1, size // 3, size, generator=generator, dtype=torch.float64
    )
    return logits, target


# ------------------------------------------------------------------------------------- reference formulas
def reference_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """The 11x11 Gaussian window of SSIM (Wang et al. 2004), from its definition."""
    g = np.array([math.exp(-((x - size // 2) ** 2) / (2 * sigma**2)) for x in range(size)])
    g /= g.sum()
    return np.outer(g, g)


def reference_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Mean SSIM of two 2-D maps, window by window: weighted means, variances and covariance over every 11x11
    neighbourhood of the zero-padded maps (as the authors' conv2d with padding 5 computes them)."""
    w = reference_window()
    pad = 5
    xp, yp = np.pad(x, pad), np.pad(y, pad)
    c1, c2 = 0.01**2, 0.03**2
    values = []
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            px, py = xp[i : i + 11, j : j + 11], yp[i : i + 11, j : j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * px * px).sum() - mx**2, (w * py * py).sum() - my**2
            cxy = (w * px * py).sum() - mx * my
            values.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def reference_bce(probabilities: torch.Tensor, target: torch.Tensor) -> float:
    """Eq. 2: -(g log p + (1 - g) log(1 - p)), averaged over all pixels of the batch (the authors' nn.BCELoss)."""
    p, g = probabilities.double(), target.double()
    return float(-(g * torch.log(p) + (1 - g) * torch.log(1 - p)).mean())


def reference_iou(probabilities: torch.Tensor, target: torch.Tensor) -> float:
    """Eq. 3 per image, 1 - sum(p g) / sum(p + g - p g), summed over the batch (the authors' IoU_loss)."""
    total = 0.0
    for p, g in zip(probabilities.double(), target.double(), strict=True):
        total += 1 - float((p * g).sum() / (p + g - p * g).sum())
    return total


def pixel_outputs(logits, stage_logits=None):
    return SimpleNamespace(
        logits=logits,
        stage_logits=stage_logits,
        gradient_logits=None,
        gradient_labels=None,
        class_logits=None,
    )


# --------------------------------------------------------------------------------------------- the terms
def test_gaussian_window_is_the_11x11_sigma_1_5_window():
    window = gaussian_window(11, 1.5)
    assert window.shape == (1, 1, 11, 11)
    np.testing.assert_allclose(window[0, 0].double().numpy(), reference_window(), rtol=1e-6, atol=1e-9)
    assert float(window.sum()) == pytest.approx(1.0, abs=1e-6)


def test_ssim_matches_the_windowed_formula():
    logits, target = _maps(seed=1, batch=1, size=16)
    prediction = torch.sigmoid(logits).float()
    value = ssim(prediction, target.float(), gaussian_window())
    expected = reference_ssim(prediction[0, 0].double().numpy(), target[0, 0].numpy())
    assert float(value) == pytest.approx(expected, abs=2e-5)
    # Identical non-constant maps are perfectly similar.
    assert float(ssim(prediction, prediction, gaussian_window())) == pytest.approx(1.0, abs=1e-5)


def test_ssim_term_is_the_authors_one_minus_ssim_over_two():
    logits, target = _maps(seed=2)
    criterion = BiRefNetLoss(BiRefNetConfig(backbone="pvt_v2_b0"))
    terms = criterion.pixel_terms(logits.float(), target.float())
    batch_ssim = np.mean(
        [
            reference_ssim(torch.sigmoid(x[0]).numpy(), t[0].numpy())
            for x, t in zip(logits, target, strict=True)
        ]
    )
    assert float(terms["ssim"]) == pytest.approx((1 - batch_ssim) / 2, abs=2e-5)


def test_bce_is_the_pixel_mean_of_eq_2_and_matches_the_authors_bceloss():
    logits, target = _maps(seed=3)
    criterion = BiRefNetLoss(BiRefNetConfig(backbone="pvt_v2_b0"))
    bce = float(criterion.pixel_terms(logits.float(), target.float())["bce"])
    assert bce == pytest.approx(reference_bce(torch.sigmoid(logits), target), rel=1e-5)
    # The authors apply nn.BCELoss to sigmoid(logits); computing it from the logits is the same at these values.
    authors = F.binary_cross_entropy(torch.sigmoid(logits.float()), target.float())
    assert bce == pytest.approx(float(authors), rel=1e-5)
    # Stable where nn.BCELoss clamps: a confidently wrong pixel costs its full logit, not 100.
    extreme = criterion.pixel_terms(torch.full((1, 1, 4, 4), 150.0), torch.zeros(1, 1, 4, 4))["bce"]
    assert float(extreme) == pytest.approx(150.0, rel=1e-4)


def test_iou_is_eq_3_summed_over_the_batch():
    logits, target = _maps(seed=4, batch=3)
    probabilities = torch.sigmoid(logits)
    value = float(iou_loss(probabilities.float(), target.float()))
    assert value == pytest.approx(reference_iou(probabilities, target), rel=1e-5)
    # Summed, not averaged: three copies of one image cost three times one image.
    single = float(iou_loss(probabilities[:1].float(), target[:1].float()))
    tripled = float(
        iou_loss(probabilities[:1].repeat(3, 1, 1, 1).float(), target[:1].repeat(3, 1, 1, 1).float())
    )
    assert tripled == pytest.approx(3 * single, rel=1e-6)


def test_classification_term_is_weighted_cross_entropy():
    config = BiRefNetConfig(backbone="pvt_v2_b0", auxiliary_classification=True)
    criterion = BiRefNetLoss(config)
    logits, target = _maps(seed=5)
    class_logits = torch.randn(2, config.num_auxiliary_classes, generator=torch.Generator().manual_seed(0))
    class_labels = torch.tensor([3, 200])
    outputs = pixel_outputs(logits.float())
    outputs.class_logits = class_logits
    _, terms = criterion(outputs, target.float(), class_labels)
    log_probabilities = class_logits.double().log_softmax(dim=1)
    expected = -float(log_probabilities[torch.arange(2), class_labels].mean())
    assert float(terms["classification"]) == pytest.approx(5.0 * expected, rel=1e-5)
    # Without class labels (not a DIS5K set) the term is skipped; -100 (no class) is ignored.
    assert float(criterion(outputs, target.float(), None)[1]["classification"]) == 0.0
    _, ignored = criterion(outputs, target.float(), torch.tensor([3, -100]))
    assert float(ignored["classification"]) == pytest.approx(5.0 * -float(log_probabilities[0, 3]), rel=1e-5)


def test_gradient_term_is_bce_between_sigmoids_summed_over_stages():
    criterion = BiRefNetLoss(BiRefNetConfig(backbone="pvt_v2_b0", loss_gradient_weight=2.0))
    generator = torch.Generator().manual_seed(6)
    logits, target = _maps(seed=6, size=32)
    predictions = [torch.randn(2, 1, s, s, generator=generator) for s in (4, 8, 16)]
    labels = [torch.randn(2, 1, 32, 32, generator=generator) * 0.1 for _ in range(3)]
    outputs = pixel_outputs(logits.float())
    outputs.gradient_logits, outputs.gradient_labels = tuple(predictions), tuple(labels)
    _, terms = criterion(outputs, target.float())
    expected = 0.0
    for prediction, label in zip(predictions, labels, strict=True):
        p = torch.sigmoid(
            F.interpolate(prediction.double(), size=(32, 32), mode="bilinear", align_corners=True)
        )
        expected += reference_bce(p, torch.sigmoid(label.double()))
    assert float(terms["gradient"]) == pytest.approx(2.0 * expected, rel=1e-5)


# --------------------------------------------------------------------------- weights and multi-stage sum
def test_multi_stage_supervision_sums_weighted_terms_over_all_side_outputs():
    config = BiRefNetConfig(backbone="pvt_v2_b0", loss_mae_weight=2.0)
    criterion = BiRefNetLoss(config)
    generator = torch.Generator().manual_seed(7)
    logits, target = _maps(seed=7, size=32)
    stages = tuple(torch.randn(2, 1, s, s, generator=generator) for s in (4, 8, 16))
    loss, terms = criterion(pixel_outputs(logits.float(), stages), target.float())

    weights = {"bce": 30.0, "iou": 0.5, "ssim": 10.0, "mae": 2.0}
    expected = dict.fromkeys(weights, 0.0)
    for prediction in (*stages, logits):
        up = F.interpolate(prediction.double(), size=(32, 32), mode="bilinear", align_corners=True)
        p = torch.sigmoid(up)
        expected["bce"] += weights["bce"] * reference_bce(p, target)
        expected["iou"] += weights["iou"] * reference_iou(p, target)
        ssim_value = np.mean(
            [reference_ssim(pi[0].numpy(), ti[0].numpy()) for pi, ti in zip(p, target, strict=True)]
        )
        expected["ssim"] += weights["ssim"] * (1 - ssim_value) / 2
        expected["mae"] += weights["mae"] * float((p - target).abs().mean())
    for name in weights:
        assert float(terms[name]) == pytest.approx(expected[name], rel=1e-4, abs=1e-5), name
    assert float(loss) == pytest.approx(sum(float(v) for v in terms.values()), rel=1e-6)
    assert float(loss) == pytest.approx(sum(expected.values()), rel=1e-4)


def test_weights_come_from_the_config():
    logits, target = _maps(seed=8)
    outputs = pixel_outputs(logits.float())
    default = BiRefNetLoss(BiRefNetConfig(backbone="pvt_v2_b0"))
    assert default.weights == {"bce": 30.0, "iou": 0.5, "ssim": 10.0, "mae": 0.0}  # paper Eq. 1
    assert default.classification_weight == 5.0 and default.gradient_weight == 1.0
    _, base = default(outputs, target.float())
    custom = BiRefNetLoss(
        BiRefNetConfig(backbone="pvt_v2_b0", loss_bce_weight=3.0, loss_iou_weight=2.0, loss_ssim_weight=0.0)
    )
    _, scaled = custom(outputs, target.float())
    assert float(scaled["bce"]) == pytest.approx(float(base["bce"]) / 10, rel=1e-6)
    assert float(scaled["iou"]) == pytest.approx(float(base["iou"]) * 4, rel=1e-6)
    assert float(scaled["ssim"]) == 0.0


def test_region_level_finetuning_keeps_only_the_iou_pixel_loss():
    criterion = BiRefNetLoss(BiRefNetConfig(backbone="pvt_v2_b0", loss_mae_weight=1.0))
    generator = torch.Generator().manual_seed(9)
    logits, target = _maps(seed=9, size=32)
    outputs = pixel_outputs(logits.float(), (torch.randn(2, 1, 8, 8, generator=generator),))
    outputs.gradient_logits = (torch.randn(2, 1, 8, 8, generator=generator),)
    outputs.gradient_labels = (torch.randn(2, 1, 32, 32, generator=generator),)
    _, full = criterion(outputs, target.float())
    assert criterion.region_level_finetuning is False
    # RLFT is an argument of the call: the loss object is not switched between phases.
    loss, rlft = criterion(outputs, target.float(), region_level_finetuning=True)
    _, again = criterion(outputs, target.float())
    assert all(float(again[name]) == float(full[name]) for name in full)  # the next call is the full loss again
    with pytest.raises(AttributeError, match="region_level_finetuning=True"):
        criterion.region_level_finetuning = True  # the old switch says where the argument went
    for name in ("bce", "ssim", "mae"):
        assert float(full[name]) > 0 and float(rlft[name]) == 0.0
    assert float(rlft["iou"]) == pytest.approx(float(full["iou"]), rel=1e-6)
    assert float(rlft["gradient"]) == pytest.approx(float(full["gradient"]), rel=1e-6)
    assert float(loss) == pytest.approx(float(rlft["iou"]) + float(rlft["gradient"]), rel=1e-6)


# --------------------------------------------------------------------------------------- through the model
def test_model_returns_the_loss_in_training_mode(tiny_config):
    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(tiny_config).train()
    pixel_values = torch.randn(2, 3, 64, 64)
    labels = (torch.rand(2, 1, 64, 64) > 0.7).float()
    torch.manual_seed(1)
    output = model(pixel_values, labels=labels)
    assert output.loss is not None and torch.isfinite(output.loss)
    assert set(output.loss_terms) == {"bce", "iou", "ssim", "mae", "gradient", "classification"}
    loss = output.loss.detach()
    assert float(loss) == pytest.approx(sum(float(v.detach()) for v in output.loss_terms.values()), rel=1e-6)
    # Every side output and the outward reference are supervised; recomputing from the outputs agrees.
    assert len(output.stage_logits) == 3 and len(output.gradient_logits) == 3
    with torch.no_grad():
        recomputed, _ = model.criterion(output, labels)
    assert float(recomputed) == pytest.approx(float(loss), rel=1e-6)
    output.loss.backward()
    assert model.reconstruction.stage_heads[0].weight.grad.abs().sum() > 0
    assert model.reconstruction.outward_references[0].gradient_head.weight.grad.abs().sum() > 0

    with pytest.raises(ValueError, match="labels"):
        model(pixel_values, labels=labels[:, :, :32])


def test_ssim_window_is_restored_by_from_pretrained(tiny_model_dir):
    # The window is a non-persistent buffer: from_pretrained (meta-device init) must recompute it, or the SSIM term
    # reads uninitialised memory (NaN losses when fine-tuning a loaded model).
    model = BiRefNetForImageSegmentation.from_pretrained(tiny_model_dir).train()
    assert torch.equal(model.criterion.ssim_window, gaussian_window(11, 1.5))
    output = model(torch.randn(2, 3, 64, 64), labels=(torch.rand(2, 1, 64, 64) > 0.7).float())
    ssim_term = output.loss_terms["ssim"].detach()
    assert torch.isfinite(ssim_term) and float(ssim_term) > 0


def test_loss_is_computed_in_float32_under_autocast():
    # Mixed-precision training (accelerate's bf16/fp16) runs the model's forward, loss included, under autocast.
    # SSIM's variances (E[x^2] - E[x]^2) cancel catastrophically in bfloat16 where the prediction is smooth and the
    # mask flat (the denominator's C2 = 9e-4 is below bfloat16's resolution near 0.25): the SSIM term came out
    # -inf for an untrained model's coarse side outputs. The criterion must compute in float32.
    criterion = BiRefNetLoss(BiRefNetConfig(backbone="pvt_v2_b0"))
    target = torch.zeros(2, 1, 64, 64)
    target[:, :, 20:44, 8:30] = 1
    for seed in range(6):
        coarse = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(seed)) * 0.5  # a smooth map
        reference_loss, reference_terms = criterion(pixel_outputs(coarse), target)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss, terms = criterion(pixel_outputs(coarse.bfloat16()), target)
        assert torch.isfinite(loss), (seed, {k: float(v) for k, v in terms.items()})
        for name in ("bce", "iou", "ssim"):  # equal up to the bfloat16 rounding of the logits
            assert float(terms[name]) == pytest.approx(float(reference_terms[name]), rel=1e-2), (seed, name)
