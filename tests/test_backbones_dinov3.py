# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""DINOv3 BiRefNet against the authors' current code, key by key: the pyramid neck and the decoder widths after it
in the authors' names and shapes, the frozen parameters (the authors' ``'bb.' in name`` rule), the backbone's
construction arguments, and the refusal of their first (neck-less) DINOv3 layout.

The expected shapes below are written from the authors' width rules (see ARCHITECTURE.md, "DINOv3 against the
authors' code"), not read off this package's model:

* ``lateral_channels_in_collection`` of ``dino_v3_*`` is the ViT width four times, doubled by ``mul_scl_ipt='cat'``;
* the neck ``pyramid_neck_x{k}`` (``BasicLatBlk``: one 1x1 conv named ``conv``) maps level k to Swin-L's widths
  (192, 384, 768, 1536 for k = 1..4), doubled by ``'cat'``;
* the inward-reference blocks ``ipt_blk5..1`` keep ``lateral[i] // 8`` of the ViT widths (5 and 4 use i = 0);
* ``decoder_block{4..1}`` take the neck width plus that inward reference, and give the next neck width (the last:
  half of the shallowest);
* ``squeeze_module`` works on the ViT widths before the neck (deepest + the three context levels -> deepest).
"""

from __future__ import annotations

import pytest
import torch
from parity_recipe import official_manifest

from birefnet_hf import BACKBONE_SPECS, BiRefNetConfig, BiRefNetForImageSegmentation
from birefnet_hf.conversion_mapping import (
    infer_config_from_state_dict,
    refuse_dinov3_without_neck,
    rename_original_key,
)

DINOV3 = ("dino_v3_s", "dino_v3_s_plus", "dino_v3_b", "dino_v3_l", "dino_v3_h_plus", "dino_v3_7b")
SWIN_L_WIDTHS = (192, 384, 768, 1536)  # shallow -> deep


def _on_meta(backbone: str, **kwargs) -> BiRefNetForImageSegmentation:
    with torch.device("meta"):
        return BiRefNetForImageSegmentation(BiRefNetConfig(backbone=backbone, **kwargs))


def _authors_decoder_shapes(vit_width: int, factor: int = 2) -> dict[str, tuple[int, ...]]:
    """Shapes of the authors' neck / decoder tensors for a DINOv3 backbone of ``vit_width`` (``factor`` 2 = 'cat')."""
    lateral = [vit_width * factor] * 4  # deep -> shallow, as the authors list them
    neck_out = [c * factor for c in SWIN_L_WIDTHS[::-1]]  # deep -> shallow
    ipt_out = [c // 8 for c in lateral]
    dec_in = [neck_out[i] + ipt_out[max(0, i - 1)] for i in range(4)]
    dec_out = [*neck_out[1:], neck_out[-1] // 2]
    shapes = {}
    for k in range(1, 5):  # x1 (stride 4, shallowest) .. x4 (stride 32)
        out, inp = neck_out[4 - k], lateral[4 - k]
        shapes[f"decoder.pyramid_neck_x{k}.conv.weight"] = (out, inp, 1, 1)
        shapes[f"decoder.pyramid_neck_x{k}.conv.bias"] = (out,)
    for i, n in enumerate((4, 3, 2, 1)):
        shapes[f"decoder.decoder_block{n}.conv_in.weight"] = (64, dec_in[i], 3, 3)
    for i, n in enumerate((4, 3, 2)):
        shapes[f"decoder.lateral_block{n}.conv.weight"] = (dec_out[i], neck_out[i + 1], 1, 1)
        shapes[f"decoder.gdt_convs_{n}.0.weight"] = (16, dec_out[i], 3, 3)
        shapes[f"decoder.conv_ms_spvn_{n}.weight"] = (1, dec_out[i], 1, 1)
    for n, i in ((5, 0), (4, 0), (3, 1), (2, 2), (1, 3)):
        shapes[f"decoder.ipt_blk{n}.conv_out.weight"] = (ipt_out[i], 64, 3, 3)
    shapes["decoder.conv_out1.0.weight"] = (1, dec_out[3] + ipt_out[3], 1, 1)
    shapes["squeeze_module.0.conv_in.weight"] = (64, lateral[0] + sum(lateral[1:]), 3, 3)
    return shapes


@pytest.mark.parametrize("backbone", DINOV3)
def test_neck_and_decoder_have_the_authors_names_and_shapes(backbone):
    width = BACKBONE_SPECS[backbone]["channels"][0]
    ours = {k: tuple(v.shape) for k, v in _on_meta(backbone).state_dict().items()}
    for key, shape in _authors_decoder_shapes(width).items():
        assert ours[rename_original_key(key, backbone)] == shape, key
    assert len([k for k in ours if ".pyramid_neck." in k]) == 8  # four 1x1 convolutions with bias, nothing else


def test_neck_widths_with_the_additive_image_pyramid():
    ours = {k: tuple(v.shape) for k, v in _on_meta("dino_v3_s", multi_scale_input="add").state_dict().items()}
    for key, shape in _authors_decoder_shapes(384, factor=1).items():
        assert ours[rename_original_key(key, "dino_v3_s")] == shape, key


@pytest.mark.parametrize("backbone", ("dino_v3_s", "dino_v3_l"))
def test_frozen_parameters_are_the_authors_bb_parameters(backbone):
    """The authors freeze every parameter whose name contains 'bb.' when ``freeze_bb`` (= 'dino_v3' in bb): the
    ViT and nothing else (no decoder or squeeze name contains 'bb.'), so the neck trains."""
    model = _on_meta(backbone)
    authors_non_backbone = [k for k, _, _ in official_manifest("swin_v1_l") if not k.startswith("bb.")]
    authors_non_backbone += list(_authors_decoder_shapes(384))
    assert not [k for k in authors_non_backbone if "bb." in k]
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {n for n, _ in model.named_parameters() if n.startswith("localization.backbone.")}
    assert all(p.requires_grad for p in model.reconstruction.pyramid_neck.parameters())
    assert all(p.requires_grad for p in model.localization.squeeze_module.parameters())
    assert not _on_meta(backbone, freeze_backbone=False).config.freezes_backbone


def test_backbone_is_built_with_the_authors_timm_arguments():
    """``timm.create_model(name, features_only=True, dynamic_img_size=True, out_indices=...)`` with timm's default
    stochastic depth (the authors pass no ``drop_path_rate``): no drop path, any input size."""
    model = _on_meta("dino_v3_s")
    vit = model.localization.backbone.vit
    assert type(vit).__name__ == "FeatureGetterNet"  # timm's features_only net for ViTs: the authors' `bb.model.*`
    assert list(vit.feature_info.out_indices) == [3, 5, 7, 11] and len(vit.model.blocks) == 12
    assert all(type(block.drop_path1).__name__ == "Identity" for block in vit.model.blocks)
    assert vit.model.dynamic_img_size
    assert BiRefNetConfig(backbone="dino_v3_s").backbone_drop_path_rate == 0.0


def test_the_authors_first_dinov3_layout_without_neck_is_refused_by_name():
    """Their first DINOv3 decoder ran on the ViT widths without ``pyramid_neck_x*``: named, not misread."""
    import timm

    spec = BACKBONE_SPECS["dino_v3_s"]
    with torch.device("meta"):
        bb = timm.create_model(spec["timm_name"], features_only=True, dynamic_img_size=True,
                               out_indices=spec["out_indices"])
    state = {f"bb.{k}": v for k, v in bb.state_dict().items()}
    for key, shape in _authors_decoder_shapes(384).items():
        if "pyramid_neck" not in key:
            state[key] = torch.empty(shape, device="meta")
    with pytest.raises(ValueError, match="no pyramid neck.*first DINOv3"):
        infer_config_from_state_dict(state)
    state.update({k: torch.empty(s, device="meta") for k, s in _authors_decoder_shapes(384).items()})
    refuse_dinov3_without_neck(state, "dino_v3_s")  # with the neck: accepted
    refuse_dinov3_without_neck({"decoder.x": None}, "swin_v1_l")  # other backbones: not concerned
