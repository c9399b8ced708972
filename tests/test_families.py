# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The released families: registry facts, native processor sizes, and loading a local folder standing in for each
family's Hub repository in the authors' layout (``config.json`` without ``model_type`` + ``model.safetensors`` with the
authors' keys, filled with the parity recipe)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from birefnet_hf import BiRefNetImageProcessor, BiRefNetImageProcessorPil
from birefnet_hf.convert_birefnet_original_to_hf import convert_checkpoint
from birefnet_hf.families import (
    FAMILIES,
    SizeRule,
    check_publish_license,
    family_config,
    family_for,
    get_family,
    image_processor_for,
    refuse_pre_2024_layout,
)
from birefnet_hf.image_processing_birefnet import get_model_input_size
from birefnet_hf.segment import load_model_and_processor
from parity_recipe import official_state_dict

AUTHORS_CONFIG = {
    "architectures": ["BiRefNet"],
    "auto_map": {"AutoConfig": "BiRefNet_config.BiRefNetConfig", "AutoModelForImageSegmentation": "birefnet.BiRefNet"},
    "bb_pretrained": False,
}

EXPECTED_SIZES = {
    "BiRefNet_HR": {"height": 2048, "width": 2048},
    "BiRefNet_HR-matting": {"height": 2048, "width": 2048},
    "BiRefNet_lite-2K": {"height": 1440, "width": 2560},
    "BiRefNet_512x512": {"height": 512, "width": 512},
    "BiRefNet_dynamic": {"longest_edge": 2304},
}


def test_registry_lists_every_released_family():
    assert set(FAMILIES) == {
        "BiRefNet", "BiRefNet_lite", "BiRefNet_lite-2K", "BiRefNet_512x512", "BiRefNet_HR", "BiRefNet_HR-matting",
        "BiRefNet-matting", "BiRefNet_lite-matting", "BiRefNet_dynamic", "BiRefNet-portrait", "BiRefNet-DIS5K",
        "BiRefNet-DIS5K-TR_TEs", "BiRefNet-COD", "BiRefNet-HRSOD", "BiRefNet-legacy", "RMBG-2.0",
    }
    for name, family in FAMILIES.items():
        assert family.hub_id.endswith("/" + name)
        assert family.sources, name
        # a fact that was not found is said so, never left blank
        if family.training_data is None:
            assert any("training sets" in item for item in family.not_found), name
        if not family.figures:
            assert any("figures" in item for item in family.not_found), name
        for figure in family.figures:
            assert figure.source and figure.metrics
    assert {f.backbone for f in FAMILIES.values()} == {"swin_v1_l", "swin_v1_t"}
    assert {FAMILIES[n].backbone for n in ("BiRefNet_lite", "BiRefNet_lite-2K", "BiRefNet_lite-matting")} == {"swin_v1_t"}


def test_rmbg_is_non_commercial_gated_and_refused_under_another_licence():
    rmbg = get_family("briaai/RMBG-2.0")
    assert rmbg.license == "cc-by-nc-4.0" and rmbg.gated and not rmbg.commercial_use
    assert "gated" in rmbg.license_note and "NonCommercial" in rmbg.license_note
    assert check_publish_license(rmbg, None) == "cc-by-nc-4.0"
    with pytest.raises(ValueError, match="cannot be published under 'mit'"):
        check_publish_license("RMBG-2.0", "mit")
    assert check_publish_license("BiRefNet_HR", "MIT") == "mit"


@pytest.mark.parametrize(
    "text, name",
    [
        ("ZhengPeng7/BiRefNet_HR", "BiRefNet_HR"),
        ("zhengpeng7/birefnet_hr", "BiRefNet_HR"),
        ("/data/models/ZhengPeng7/BiRefNet_lite-2K/", "BiRefNet_lite-2K"),
        ("/cache/models--ZhengPeng7--BiRefNet_dynamic/snapshots/abc123", "BiRefNet_dynamic"),
        ("briaai/RMBG-2.0", "RMBG-2.0"),
        ("some/other-model", None),
    ],
)
def test_family_for(text, name):
    family = family_for(text)
    assert (family.name if family else None) == name


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_processor_size_of_every_family(name, tmp_path):
    folder = tmp_path / "ZhengPeng7" / name
    folder.mkdir(parents=True)
    processor = image_processor_for(folder)
    expected = EXPECTED_SIZES.get(name, {"height": 1024, "width": 1024})
    assert {k: v for k, v in dict(processor.size).items() if v is not None} == expected
    assert isinstance(processor, BiRefNetImageProcessor)
    assert isinstance(image_processor_for(folder, backend="pil"), BiRefNetImageProcessorPil)


def test_dynamic_rule_keeps_the_aspect_ratio():
    rule = get_family("BiRefNet_dynamic").size
    assert rule.kind == "dynamic" and (rule.min_side, rule.max_side) == (256, 2304)
    assert get_model_input_size(600, 1200, rule.processor_size()) == (1152, 2304)
    processor = image_processor_for("ZhengPeng7/BiRefNet_dynamic")
    pixel_values = processor(torch.zeros(3, 300, 200, dtype=torch.uint8), return_tensors="pt")["pixel_values"]
    assert tuple(pixel_values.shape[-2:]) == (2304, 1536)
    with pytest.raises(ValueError, match="multiples of 32"):
        SizeRule("fixed", 1000, 1000)


def test_family_config_carries_backbone_and_loss_switches():
    assert family_config("BiRefNet_HR").backbone == "swin_v1_l"
    matting = family_config("BiRefNet-matting")
    assert matting.loss_iou_weight == 0.0 and matting.loss_mae_weight == 100.0
    assert family_config("BiRefNet-DIS5K").loss_mae_weight == 0.0
    with pytest.raises(ValueError, match="unknown BiRefNet family"):
        get_family("BiRefNet_XL")


def test_pre_2024_layout_is_refused_with_a_message_naming_it():
    state = official_state_dict("pvt_v2_b0")
    state["locate_header.0.conv_in.weight"] = torch.zeros(4, 4, 3, 3)
    state["refiner.0.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="pre-2024 BiRefNet layout.*locate_header"):
        refuse_pre_2024_layout(state)
    with pytest.raises(ValueError, match="pre-2024"):
        convert_checkpoint(state)


def _authors_repo(root, family_name, dtype=torch.float16):
    """A folder standing in for the family's Hub repository, in the authors' layout (their Hub weights are fp16)."""
    family = FAMILIES[family_name]
    folder = root / family.hub_id
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(AUTHORS_CONFIG))
    state = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in official_state_dict(family.backbone).items()}
    save_file(state, str(folder / "model.safetensors"))
    return folder


def _check_family_folder(folder, family_name):
    family = FAMILIES[family_name]
    model, processor = load_model_and_processor(folder)
    assert model.config.backbone == family.backbone and not model.training
    assert {k: v for k, v in dict(processor.size).items() if v is not None} == family.size.processor_size()
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 64, 64)).logits
    assert logits.shape == (1, 1, 64, 64) and torch.isfinite(logits).all()


def test_lite_2k_stand_in_converts_with_its_non_square_processor(tmp_path):
    folder = _authors_repo(tmp_path, "BiRefNet_lite-2K")
    _check_family_folder(folder, "BiRefNet_lite-2K")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(FAMILIES) - {"BiRefNet_lite-2K"}))
def test_every_family_stand_in_converts_and_runs(name, tmp_path):
    folder = _authors_repo(tmp_path, name)
    _check_family_folder(folder, name)
