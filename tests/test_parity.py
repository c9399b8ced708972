# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Parity with the authors' implementation (golden outputs in tests/fixtures/parity, made with their code).

The authors'-format state dict is filled with the deterministic recipe and loaded through the checkpoint converter
(the code that loads real checkpoints). Tolerances are the reference data's: eval logits and backbone probes 1e-4,
train-mode outputs 1e-2 (BatchNorm on batch statistics amplifies rounding).
"""

import numpy as np
import pytest
import torch
from parity_recipe import FIXTURES, official_state_dict

from birefnet_hf.convert_birefnet_original_to_hf import convert_checkpoint
from birefnet_hf.modeling_birefnet import image_gradient_target

CASES = ("h512w512", "h384w640")
EVAL_ATOL = 1e-4
TRAIN_ATOL = 1e-2


@pytest.fixture(scope="module", params=["pvt_v2_b0", "swin_v1_t"])
def parity_run(request):
    """Run the converted model once per backbone on both golden inputs, eval then train mode."""
    backbone = request.param
    model = convert_checkpoint(official_state_dict(backbone))  # backbone inferred from the tensors
    assert model.config.backbone == backbone
    inputs = np.load(FIXTURES / "inputs.npz")
    results = {}
    with torch.no_grad():
        for case in CASES:
            x = torch.from_numpy(inputs[f"{case}__input"]).float()
            out = model(x, output_hidden_states=True)
            probes = model.localization.backbone(x)  # the full-resolution pass the probes were taken from
            results[case, "eval"] = (out, probes)
        # Train mode as the golden run: dropout and drop-path off, BatchNorm on batch statistics.
        model.train()
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
            if type(module).__name__ == "DropPath":
                module.drop_prob = 0.0
        saved = {k: v.clone() for k, v in model.state_dict().items()}
        for case in CASES:
            x = torch.from_numpy(inputs[f"{case}__input"]).float()
            results[case, "train"] = (model(x), image_gradient_target(x))
            model.load_state_dict(saved)  # running statistics as before, like the golden run
    return backbone, results, np.load(FIXTURES / f"{backbone}.npz")


def _close(actual, expected, atol, what):
    expected = torch.from_numpy(np.asarray(expected))
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    diff = (actual - expected).abs().max().item()
    assert diff <= atol, f"{what}: max abs diff {diff:.3g} > {atol}"


@pytest.mark.parametrize("case", CASES)
def test_eval_logits_match_authors(parity_run, case):
    backbone, results, golden = parity_run
    out, _ = results[case, "eval"]
    _close(out.logits, golden[f"{case}__eval__final"], EVAL_ATOL, f"{backbone} {case} eval logits")


@pytest.mark.parametrize("case", CASES)
def test_backbone_probes_match_authors(parity_run, case):
    backbone, results, golden = parity_run
    _, probes = results[case, "eval"]
    assert len(probes) == 4
    for level, feature in enumerate(probes, start=1):
        _close(feature[:, :1], golden[f"{case}__eval__bb_x{level}__ch0"], EVAL_ATOL, f"{backbone} {case} x{level} ch0")
        _close(feature.mean(dim=(2, 3)), golden[f"{case}__eval__bb_x{level}__spmean"], EVAL_ATOL, f"x{level} mean")


@pytest.mark.parametrize("case", CASES)
def test_train_mode_outputs_match_authors(parity_run, case):
    backbone, results, golden = parity_run
    out, _ = results[case, "train"]
    assert len(out.stage_logits) == 3 and len(out.gradient_logits) == 3
    for name, tensor in zip(("m4", "m3", "m2"), out.stage_logits):
        _close(tensor, golden[f"{case}__train__{name}"], TRAIN_ATOL, f"{backbone} {case} {name}")
    _close(out.logits, golden[f"{case}__train__final"], TRAIN_ATOL, f"{backbone} {case} final")
    for stage, tensor in zip((4, 3, 2), out.gradient_logits):
        _close(tensor, golden[f"{case}__train__gdt_pred_{stage}"], TRAIN_ATOL, f"{backbone} {case} gdt_pred_{stage}")


@pytest.mark.parametrize("case", CASES)
def test_gradient_labels_follow_authors_formula(parity_run, case):
    """gdt_label_k = laplacian(mean(x)) * upsample(m_k); the Laplacian itself matches kornia's (golden)."""
    backbone, results, _ = parity_run
    out, target = results[case, "train"]
    gdt_gt = np.load(FIXTURES / "gdt_gt.npz")[f"{case}__gdt_gt"]
    _close(target, gdt_gt, 1e-5, "laplacian gradient target")
    size = target.shape[-2:]
    for side, label in zip(out.stage_logits, out.gradient_labels):
        expected = target * torch.nn.functional.interpolate(side, size=size, mode="bilinear", align_corners=True)
        assert torch.allclose(label, expected, atol=1e-6)
