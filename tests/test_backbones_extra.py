# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The torchvision (vgg16, vgg16bn, resnet50) and DINOv3 (dino_v3_*) backbones: the authors' state-dict keys, the
converter, forward/backward at small size, freezing, save/load round trips."""

from __future__ import annotations

import pytest
import torch

from birefnet_hf import BACKBONE_SPECS, BiRefNetConfig, BiRefNetForImageSegmentation
from birefnet_hf.convert_birefnet_original_to_hf import (
    convert_checkpoint,
    infer_backbone,
    infer_config_from_state_dict,
    rename_original_key,
)
from parity_recipe import official_manifest, official_state_dict, recipe_tensor

TORCHVISION = ("vgg16", "vgg16bn", "resnet50")
DINOV3 = ("dino_v3_s", "dino_v3_s_plus", "dino_v3_b", "dino_v3_l", "dino_v3_h_plus", "dino_v3_7b")


def _on_meta(backbone: str, **kwargs) -> BiRefNetForImageSegmentation:
    with torch.device("meta"):
        return BiRefNetForImageSegmentation(BiRefNetConfig(backbone=backbone, **kwargs))


@pytest.mark.parametrize("backbone", ("vgg16", "resnet50"))
def test_authors_manifest_maps_onto_the_model_key_for_key(backbone):
    """Every key of the authors' state dict (their manifest) lands on one of our tensors with its shape, and every
    one of ours is covered."""
    ours = _on_meta(backbone).state_dict()
    seen = set()
    for key, shape, _ in official_manifest(backbone):
        new = rename_original_key(key, backbone)
        assert new in ours, key
        assert tuple(ours[new].shape) == tuple(shape), key
        seen.add(new)
    assert seen == set(ours)


def test_vgg16bn_keys_are_torchvisions_slices():
    """vgg16bn has no manifest: its keys are the authors' cut of torchvision's vgg16_bn ``features`` (conv1 = [:14],
    conv2 = [14:24], conv3 = [24:34], conv4 = [34:44]) with torchvision's indices kept inside each stage."""
    from torchvision.models import vgg16_bn

    with torch.device("meta"):
        features = vgg16_bn().features
    expected = {}
    for name, (start, stop) in zip(("conv1", "conv2", "conv3", "conv4"), ((0, 14), (14, 24), (24, 34), (34, 44))):
        for key, value in features[start:stop].state_dict().items():
            expected[f"localization.backbone.{name}.{key}"] = tuple(value.shape)
    ours = {k: tuple(v.shape) for k, v in _on_meta("vgg16bn").state_dict().items() if k.startswith("localization.backbone.")}
    assert ours == expected


@pytest.mark.parametrize("backbone", DINOV3)
def test_dinov3_backbone_keys_are_the_authors_timm_features_only_net(backbone):
    """The authors' ``bb`` is timm's ``features_only`` DINOv3 net: our backbone holds exactly its tensors (built on
    the meta device, so the 7B model costs no memory), the pyramid neck maps to Swin-L widths at strides 4-32."""
    import timm

    spec = BACKBONE_SPECS[backbone]
    with torch.device("meta"):
        authors_bb = timm.create_model(
            spec["timm_name"], features_only=True, dynamic_img_size=True, out_indices=spec["out_indices"]
        )
    model = _on_meta(backbone)
    ours = model.state_dict()
    for key, value in authors_bb.state_dict().items():
        new = rename_original_key("bb." + key, backbone)
        assert tuple(ours[new].shape) == tuple(value.shape), key
    assert len([k for k in ours if k.startswith("localization.backbone.")]) == len(authors_bb.state_dict())
    width = spec["channels"][0]
    neck = model.reconstruction.pyramid_neck.convs
    assert [tuple(c.weight.shape[:2]) for c in neck] == [(384, 2 * width), (768, 2 * width), (1536, 2 * width),
                                                         (3072, 2 * width)]
    assert model.config.freezes_backbone and model.config.freeze_backbone is None
    assert not any(p.requires_grad for p in model.localization.backbone.parameters())


def _authors_dinov3_state_dict(backbone: str) -> dict[str, torch.Tensor]:
    """An authors'-layout state dict for a DINOv3 BiRefNet, filled with the recipe: ``bb.`` keys from timm's
    ``features_only`` net (what the authors build), decoder and squeeze key *names* from the authors' swin_v1_l
    manifest (names do not depend on the backbone) with this backbone's shapes, plus ``decoder.pyramid_neck_x{1..4}``."""
    import timm

    spec = BACKBONE_SPECS[backbone]
    bb = timm.create_model(spec["timm_name"], features_only=True, dynamic_img_size=True, out_indices=spec["out_indices"])
    state = {f"bb.{k}": recipe_tensor(f"bb.{k}", v.shape) for k, v in bb.state_dict().items()}
    ours = _on_meta(backbone).state_dict()
    for key, _, _ in official_manifest("swin_v1_l"):
        if key.startswith("bb.") or key.endswith("relative_position_index"):
            continue
        state[key] = recipe_tensor(key, ours[rename_original_key(key, backbone)].shape)
    for level in range(1, 5):
        for part in ("weight", "bias"):
            key = f"decoder.pyramid_neck_x{level}.conv.{part}"
            state[key] = recipe_tensor(key, ours[f"reconstruction.pyramid_neck.convs.{level - 1}.{part}"].shape)
    return state


def test_dinov3_checkpoint_in_the_authors_layout_converts_and_runs():
    state = _authors_dinov3_state_dict("dino_v3_s")
    assert infer_backbone(state) == "dino_v3_s"
    config = infer_config_from_state_dict(state)
    assert config.multi_scale_input == "cat" and config.context_feature_fusion_levels == 3
    model = convert_checkpoint(state)
    assert model.config.backbone == "dino_v3_s"
    torch.testing.assert_close(
        model.reconstruction.pyramid_neck.convs[3].weight, state["decoder.pyramid_neck_x4.conv.weight"]
    )
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 64, 96)).logits
    assert logits.shape == (1, 1, 64, 96) and torch.isfinite(logits).all()


def test_dinov3_small_plus_is_told_apart_from_small():
    state = _authors_dinov3_state_dict("dino_v3_s_plus")
    assert infer_backbone(state) == "dino_v3_s_plus"


@pytest.mark.parametrize("backbone", ("vgg16", "resnet50"))
def test_torchvision_checkpoint_in_the_authors_layout_converts_and_runs(backbone):
    """The authors' manifest filled with the recipe: the backbone is inferred from the tensors, every tensor lands
    where it belongs, and the model runs."""
    state = official_state_dict(backbone)
    assert infer_backbone(state) == backbone
    converted = convert_checkpoint(state)
    assert converted.config.backbone == backbone and converted.config.multi_scale_input == "cat"
    key = "conv4.24.weight" if backbone == "vgg16" else "conv4.0.conv1.weight"
    assert torch.equal(converted.state_dict()[f"localization.backbone.{key}"], state[f"bb.{key}"])
    with torch.no_grad():
        assert converted(torch.randn(1, 3, 64, 64)).logits.shape == (1, 1, 64, 64)


def test_vgg16bn_is_told_apart_from_vgg16():
    ours = _on_meta("vgg16bn").state_dict()
    state = {
        key.replace("localization.backbone.", "bb."): torch.zeros(value.shape)
        for key, value in ours.items() if key.startswith("localization.backbone.")
    }
    assert infer_backbone(state) == "vgg16bn"
    del state["bb.conv1.1.running_mean"]
    assert infer_backbone(state) == "vgg16"


@pytest.mark.parametrize(
    "backbone", ("vgg16", "vgg16bn", "resnet50", pytest.param("dino_v3_s", marks=pytest.mark.slow))
)
def test_forward_backward_and_save_load_round_trip(backbone, tmp_path):
    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone=backbone)).train()
    pixel_values = torch.randn(2, 3, 64, 64)
    labels = (torch.rand(2, 1, 64, 64) > 0.5).float()
    output = model(pixel_values=pixel_values, labels=labels)
    output.loss.backward()
    assert torch.isfinite(output.loss)
    backbone_grads = [p.grad for p in model.localization.backbone.parameters()]
    head_grad = model.reconstruction.head.weight.grad
    assert head_grad is not None and head_grad.abs().sum() > 0
    if backbone.startswith("dino_v3"):  # frozen, as the authors train it
        assert all(g is None for g in backbone_grads)
    else:
        assert all(g is not None for g in backbone_grads)

    model.eval()
    model.save_pretrained(tmp_path / "saved")
    loaded = BiRefNetForImageSegmentation.from_pretrained(tmp_path / "saved").eval()
    assert loaded.config.backbone == backbone
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).logits, model(x).logits)
    if backbone.startswith("dino_v3"):
        assert not any(p.requires_grad for p in loaded.localization.backbone.parameters())


def test_freeze_backbone_switch():
    unfrozen = BiRefNetForImageSegmentation(BiRefNetConfig(backbone="dino_v3_s", freeze_backbone=False))
    assert all(p.requires_grad for p in unfrozen.localization.backbone.parameters())
    frozen = BiRefNetForImageSegmentation(BiRefNetConfig(backbone="vgg16", freeze_backbone=True))
    assert not any(p.requires_grad for p in frozen.localization.backbone.parameters())
    assert all(p.requires_grad for p in frozen.reconstruction.parameters())
    assert BiRefNetConfig(backbone="vgg16").freezes_backbone is False


@pytest.mark.parametrize(
    "backbone, multi_scale_input, minimum",
    [("vgg16", "cat", 64), ("vgg16bn", "add", 64), ("vgg16", "none", 32), ("resnet50", "cat", 32),
     ("resnet50", "add", 32), ("dino_v3_s", "cat", 32), ("pvt_v2_b0", "cat", 64), ("swin_v1_t", "cat", 32)],
)
def test_minimum_input_size_of_each_backbone(backbone, multi_scale_input, minimum):
    assert _on_meta(backbone, multi_scale_input=multi_scale_input).minimum_input_size == minimum


@pytest.mark.parametrize("backbone, minimum", [("vgg16", 64), ("resnet50", 32)])
def test_torchvision_backbones_run_at_their_minimum_input_size(backbone, minimum):
    """VGG-16's last max-pool needs a 2x2 stride-16 map: 32 px, 64 px when the backbone also sees the half-size image
    (the image-pyramid input, "cat" by default). Below the minimum the model refuses the input by name instead of
    failing inside a max-pool; at the minimum it runs. ResNet-50 (padded stride-2 convolutions) runs at 32 px."""
    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone=backbone)).eval()
    assert model.minimum_input_size == minimum
    with torch.no_grad():
        logits = model(torch.randn(1, 3, minimum, minimum + 32)).logits
        assert logits.shape == (1, 1, minimum, minimum + 32) and torch.isfinite(logits).all()
        if minimum > 32:
            with pytest.raises(ValueError, match=f"{backbone} backbone needs inputs of at least {minimum}x{minimum}"):
                model(torch.randn(1, 3, 32, minimum))
