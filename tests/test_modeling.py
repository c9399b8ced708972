# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""BiRefNetForImageSegmentation: every config switch, gradients, input checks, save/load, Auto classes."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import birefnet_hf
from birefnet_hf import BiRefNetConfig, BiRefNetForImageSegmentation
from birefnet_hf.modeling_birefnet import DeformableConv2d, ReconstructionBlock

SWITCHES = [
    {},
    {"multi_scale_input": "none"},
    {"multi_scale_input": "add"},
    {"context_feature_fusion_levels": 0},
    {"context_feature_fusion_levels": 1},
    {"context_feature_fusion_levels": 2},
    {"squeeze_block_type": "none"},
    {"squeeze_block_type": "none", "context_feature_fusion_levels": 0},
    {"squeeze_block_type": "residual", "squeeze_block_count": 2},
    {"squeeze_block_type": "aspp"},
    {"squeeze_block_type": "aspp_deformable"},
    {"decoder_block_type": "residual"},
    {"decoder_attention": "none"},
    {"decoder_attention": "aspp"},
    {"deformable_kernel_sizes": [3, 5]},
    {"decoder_inter_channels": "adaptive"},
    {"inward_reference": False},
    {"inward_reference_patch_split": False},
    {"outward_reference": False},
    {"outward_reference": False, "multi_stage_supervision": False},
    {"auxiliary_classification": True, "num_auxiliary_classes": 7},
    {"use_batch_norm": False},
]


def _batch(size=(64, 64), n=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    pixel_values = torch.randn(n, 3, *size, generator=generator)
    labels = (torch.rand(n, 1, *size, generator=generator) > 0.5).float()
    return pixel_values, labels


@pytest.mark.parametrize("switch", SWITCHES, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "default")
def test_every_switch_builds_runs_forward_and_backward(switch):
    torch.manual_seed(0)
    config = BiRefNetConfig(backbone="pvt_v2_b0", **switch)
    model = BiRefNetForImageSegmentation(config)
    pixel_values, labels = _batch()
    class_labels = torch.tensor([0, 1]) if config.auxiliary_classification else None

    model.train()
    out = model(pixel_values, labels=labels, class_labels=class_labels)
    assert out.logits.shape == (2, 1, 64, 64)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert model.localization.backbone.patch_embed.proj.weight.grad is not None
    if config.multi_stage_supervision:
        assert [t.shape[-1] for t in out.stage_logits] == [2, 4, 8]
    else:
        assert out.stage_logits is None
    assert (out.gradient_logits is not None) == config.outward_reference
    assert (out.class_logits is not None) == config.auxiliary_classification
    if config.auxiliary_classification:
        assert out.class_logits.shape == (2, 7) and out.loss_terms["classification"] > 0

    model.eval()
    with torch.no_grad():
        eval_out = model(pixel_values)
    assert eval_out.logits.shape == (2, 1, 64, 64)
    assert eval_out.stage_logits is None and eval_out.gradient_logits is None and eval_out.loss is None


def test_every_parameter_gets_a_gradient_with_all_heads_on():
    torch.manual_seed(0)
    config = BiRefNetConfig(backbone="pvt_v2_b0", auxiliary_classification=True, num_auxiliary_classes=5)
    model = BiRefNetForImageSegmentation(config).train()
    pixel_values, labels = _batch()
    out = model(pixel_values, labels=labels, class_labels=torch.tensor([1, 3]))
    out.loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:10]}"
    nonfinite = [name for name, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not nonfinite
    assert set(out.loss_terms) == {"bce", "iou", "ssim", "mae", "gradient", "classification"}
    assert torch.allclose(out.loss, sum(out.loss_terms.values()))


@pytest.mark.parametrize("size", [(64, 96), (192, 64), (128, 64)])
def test_non_square_multiples_of_32(size, tiny_model_dir):
    model = BiRefNetForImageSegmentation.from_pretrained(tiny_model_dir).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, *size), output_hidden_states=True)
    assert out.logits.shape == (1, 1, *size)
    assert [h.shape[-2:] for h in out.hidden_states] == [
        (size[0] // s, size[1] // s) for s in (4, 8, 16, 32)
    ]


@pytest.mark.parametrize(
    "shape", [(1, 3, 65, 64), (1, 3, 64, 100), (1, 3, 0, 64), (3, 64, 64), (1, 1, 64, 64), (1, 3, 96, 32)]
)
def test_bad_input_shapes_are_rejected(shape, tiny_model_dir):
    model = BiRefNetForImageSegmentation.from_pretrained(tiny_model_dir).eval()
    with pytest.raises(ValueError, match="multiples of 32|batch, 3, height, width|at least 64x64"):
        model(torch.randn(*shape))


def test_labels_of_wrong_shape_are_rejected(tiny_model_dir):
    model = BiRefNetForImageSegmentation.from_pretrained(tiny_model_dir).train()
    with pytest.raises(ValueError, match="labels"):
        model(torch.randn(1, 3, 64, 64), labels=torch.rand(1, 64, 64))


def test_deformable_offsets_start_at_zero_and_decoder_uses_torch_default_init(tiny_config):
    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(tiny_config)
    deformables = [m for m in model.modules() if isinstance(m, DeformableConv2d)]
    assert len(deformables) == 5 * 4  # squeeze + 4 decoder blocks, 4 deformable branches each
    for module in deformables:
        for conv in (module.offset_conv, module.modulator_conv):
            assert torch.count_nonzero(conv.weight) == 0 and torch.count_nonzero(conv.bias) == 0
        assert module.regular_conv.weight.std() > 0
    head = model.reconstruction.head.weight
    bound = 1 / head.shape[1] ** 0.5  # PyTorch's default (kaiming-uniform a=sqrt(5)) bound
    assert head.abs().max() <= bound + 1e-6 and head.std() > bound / 4


@pytest.mark.parametrize("backbone", ["pvt_v2_b0", "swin_v1_t"])
def test_save_load_round_trip_is_bit_identical(tmp_path, backbone):
    """Swin included: its relative-position index is a computed buffer that is not saved."""
    torch.manual_seed(1)
    model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone=backbone)).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = birefnet_hf.AutoModelForImageSegmentation.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, BiRefNetForImageSegmentation)
    original, reloaded = model.state_dict(), loaded.state_dict()
    assert original.keys() == reloaded.keys()
    for key in original:
        assert torch.equal(original[key], reloaded[key]), key
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x).logits
        # As loaded, tensors may sit unaligned in the safetensors mmap, so SIMD kernels may round differently
        # in the last bit; in fresh allocations the outputs are bit-identical.
        torch.testing.assert_close(loaded(x).logits, expected, rtol=0, atol=1e-6)
        for tensor in [*loaded.parameters(), *loaded.buffers()]:
            tensor.data = tensor.data.clone()
        assert torch.equal(loaded(x).logits, expected)


def test_auto_config_and_id2label(tiny_model_dir):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_model_dir)
    assert isinstance(config, BiRefNetConfig)
    assert config.id2label == {0: "background", 1: "foreground"}
    saved = json.loads((tiny_model_dir / "config.json").read_text())
    assert saved["model_type"] == "birefnet" and saved["backbone"] == "pvt_v2_b0"


@pytest.mark.parametrize("bad", [{"backbone": "resnet18"}, {"multi_scale_input": "both"},
                                 {"context_feature_fusion_levels": 4}, {"decoder_attention": "sa"},
                                 {"outward_reference": True, "multi_stage_supervision": False},
                                 {"deformable_kernel_sizes": [2]}])
def test_invalid_config_values_are_named(bad):
    with pytest.raises(ValueError) as error:
        BiRefNetConfig(**bad)
    assert next(iter(bad)) in str(error.value) or "backbone" in str(error.value)


def test_trust_remote_code_without_the_package(tmp_path, tiny_config):
    """A saved folder carries the code: a fresh process that cannot import birefnet_hf loads it."""
    torch.manual_seed(2)
    model = BiRefNetForImageSegmentation(tiny_config).eval()
    model.register_for_auto_class("AutoModelForImageSegmentation")
    model.config.register_for_auto_class()
    folder = tmp_path / "remote"
    try:
        model.save_pretrained(folder)
    finally:  # registration is a class attribute: do not leak it into other tests
        del BiRefNetForImageSegmentation._auto_class
        del BiRefNetConfig._auto_class
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x).logits
    torch.save({"x": x, "expected": expected}, tmp_path / "io.pt")
    script = textwrap.dedent(
        f"""
        import sys
        class _NoPackage:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "birefnet_hf":
                    raise ImportError("birefnet_hf is blocked in this test")
        sys.meta_path.insert(0, _NoPackage())
        import torch
        from transformers import AutoModelForImageSegmentation
        data = torch.load({str(tmp_path / 'io.pt')!r}, weights_only=True)
        model = AutoModelForImageSegmentation.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        with torch.no_grad():
            logits = model(data["x"]).logits
        assert "birefnet_hf" not in sys.modules
        torch.testing.assert_close(logits, data["expected"], rtol=0, atol=1e-6)
        print("REMOTE_OK", type(model).__module__)
        """
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"), PYTHONPATH="")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "REMOTE_OK transformers_modules" in result.stdout


def test_gradient_checkpointing_gives_the_same_gradients(tiny_config):
    torch.manual_seed(3)
    config = BiRefNetConfig(backbone="pvt_v2_b0", use_batch_norm=False)  # BN stats would update twice
    reference = BiRefNetForImageSegmentation(config).train()
    checkpointed = BiRefNetForImageSegmentation(config).train()
    checkpointed.load_state_dict(reference.state_dict())
    for model in (reference, checkpointed):
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
    checkpointed.activation_checkpointing_enable()
    assert all(b.gradient_checkpointing for b in checkpointed.modules() if isinstance(b, ReconstructionBlock))
    assert all(stage.grad_checkpointing for stage in checkpointed.localization.backbone.stages)
    pixel_values, labels = _batch(seed=4)
    losses = []
    for model in (reference, checkpointed):
        torch.manual_seed(5)
        out = model(pixel_values, labels=labels)
        out.loss.backward()
        losses.append(out.loss.detach())
    assert torch.allclose(losses[0], losses[1], rtol=1e-5)
    for (name, p_ref), (_, p_ckpt) in zip(reference.named_parameters(), checkpointed.named_parameters()):
        assert torch.allclose(p_ref.grad, p_ckpt.grad, rtol=1e-4, atol=1e-6), name
    checkpointed.activation_checkpointing_disable()
    assert not any(stage.grad_checkpointing for stage in checkpointed.localization.backbone.stages)


def test_use_pretrained_backbone_loads_timm_weights_from_the_hub_cache(tmp_path, monkeypatch):
    """The real timm download path, served offline from a local Hugging Face cache holding a weights file."""
    import huggingface_hub.constants as hub_constants
    import timm
    from safetensors.torch import save_file

    reference = timm.create_model("pvt_v2_b0", num_classes=0)
    weights = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in reference.state_dict().items()}
    snapshot = tmp_path / "hub" / "models--timm--pvt_v2_b0.in1k" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    save_file(weights, str(snapshot / "model.safetensors"))
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    config = BiRefNetConfig(backbone="pvt_v2_b0", use_pretrained_backbone=True)
    model = BiRefNetForImageSegmentation(config)
    backbone = model.localization.backbone
    assert torch.equal(backbone.patch_embed.proj.weight, weights["patch_embed.proj.weight"])
    assert torch.equal(backbone.stages[3].blocks[1].mlp.fc2.weight, weights["stages.3.blocks.1.mlp.fc2.weight"])
    # Decoder weights are initialised, not touched by the backbone weights.
    assert torch.count_nonzero(model.localization.squeeze_module[0].conv_in.weight) > 0

    # A saved model never fetches backbone weights again when loaded.
    model.save_pretrained(tmp_path / "saved")
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    reloaded = BiRefNetForImageSegmentation.from_pretrained(tmp_path / "saved")
    assert torch.equal(reloaded.localization.backbone.patch_embed.proj.weight, weights["patch_embed.proj.weight"])


#: dino_v3_7b holds 6.8 B parameters (27 GB in float32, more than CI's machine has): its keys, shapes and pyramid are
#: checked on the meta device (tests/test_backbones_extra.py), never built in memory.
IN_MEMORY_BACKBONES = sorted(name for name in birefnet_hf.BACKBONE_SPECS if name != "dino_v3_7b")


@pytest.mark.slow
@pytest.mark.parametrize("backbone", IN_MEMORY_BACKBONES)
def test_every_backbone_runs_forward_and_backward(backbone):
    model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone=backbone)).train()
    pixel_values, labels = _batch(n=2)
    out = model(pixel_values, labels=labels)
    out.loss.backward()
    assert out.logits.shape == (2, 1, 64, 64) and torch.isfinite(out.loss)
    channels = birefnet_hf.BACKBONE_SPECS[backbone]["channels"]
    features = model.localization.backbone(pixel_values)
    assert [f.shape[1] for f in features] == list(channels)


def test_bfloat16_forward_runs_and_stays_close(tiny_config):
    """bf16 end to end (the authors' torchvision operator refuses bf16 on CUDA); checked on CPU here."""
    torch.manual_seed(6)
    model = BiRefNetForImageSegmentation(tiny_config).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        reference = torch.sigmoid(model(x).logits)
        half = torch.sigmoid(model.to(torch.bfloat16)(x.bfloat16()).logits)
    assert half.dtype == torch.bfloat16
    assert (half.float() - reference).abs().max() < 0.05


@pytest.mark.parametrize("backbone", ["pvt_v2_b0", "swin_v1_t"])
def test_weights_missing_from_a_checkpoint_are_initialised_and_named(tmp_path, backbone, caplog):
    """Backbone weights absent from a checkpoint get timm's initialisation (not raw memory) and are reported by name;
    a model built on the meta device and materialised with `init_weights()` is initialised everywhere."""
    import safetensors.torch
    from transformers.utils import logging as hf_logging

    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone=backbone))
    model.save_pretrained(tmp_path)
    state = safetensors.torch.load_file(tmp_path / "model.safetensors")
    dropped = sorted(k for k in state if k.startswith("localization.backbone."))[:6]
    safetensors.torch.save_file({k: v for k, v in state.items() if k not in dropped}, tmp_path / "model.safetensors",
                                metadata={"format": "pt"})
    hf_logging.enable_propagation()
    try:
        with caplog.at_level("WARNING"):
            loaded = BiRefNetForImageSegmentation.from_pretrained(tmp_path)
    finally:
        hf_logging.disable_propagation()
    parameters = dict(loaded.named_parameters())
    for key in dropped:
        value = parameters[key]
        assert torch.isfinite(value).all() and value.abs().max() < 10, key
        assert key.split(".")[-2] in caplog.text or key in caplog.text
    kept = next(k for k in state if k.startswith("localization.backbone.") and k not in dropped)
    assert torch.equal(parameters[kept], state[kept])

    with torch.device("meta"):
        meta = BiRefNetForImageSegmentation(BiRefNetConfig(backbone=backbone))
    meta.to_empty(device="cpu")
    meta.init_weights()
    for name, value in meta.named_parameters():
        assert torch.isfinite(value).all() and value.abs().max() < 10, name
        if value.dim() > 1 and value.numel() > 64 and "offset_conv" not in name and "modulator_conv" not in name:
            assert value.std() > 0, name  # (deformable offsets and modulation start at zero by design)


# ------------------------------------------------- the authors' layout through transformers' loading (issue 17)
@pytest.fixture(scope="module")
def authors_folder(tmp_path_factory):
    """A folder standing in for an authors' Hub repository (their config.json, their key names, the parity recipe's
    pvt_v2_b0 weights) and the logits of the explicit converter's model on one input."""
    from safetensors.torch import save_file

    from birefnet_hf.convert_birefnet_original_to_hf import convert_checkpoint
    from parity_recipe import official_state_dict
    from test_families import AUTHORS_CONFIG

    state_dict = official_state_dict("pvt_v2_b0")
    folder = tmp_path_factory.mktemp("authors") / "ZhengPeng7--BiRefNet_lite"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(AUTHORS_CONFIG))
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(folder / "model.safetensors"))
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = convert_checkpoint(state_dict)(x).logits
    return folder, x, expected


def test_authors_layout_loads_with_device_map_and_loading_info(authors_folder):
    folder, x, expected = authors_folder
    model, info = BiRefNetForImageSegmentation.from_pretrained(folder, device_map="cpu", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert not info["error_msgs"]
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert not model.training and model.config.backbone == "pvt_v2_b0" and model.config.name_or_path == str(folder)
    with torch.no_grad():
        assert torch.equal(model(x).logits, expected)  # the explicit converter's model, to the bit


@pytest.mark.parametrize("dtype", [torch.bfloat16, "bfloat16"])
def test_authors_layout_loads_in_the_requested_dtype(authors_folder, dtype):
    folder, x, expected = authors_folder
    model = BiRefNetForImageSegmentation.from_pretrained(folder, dtype=dtype)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    with torch.no_grad():
        half = torch.sigmoid(model(x.bfloat16()).logits.float())
    assert (half - torch.sigmoid(expected)).abs().max() < 0.05


def test_authors_layout_in_a_subfolder_with_config_fields(authors_folder, tmp_path):
    import shutil

    folder, x, expected = authors_folder
    shutil.copytree(folder, tmp_path / "repo" / "weights")
    model = BiRefNetForImageSegmentation.from_pretrained(tmp_path / "repo", subfolder="weights", output_hidden_states=True)
    assert model.config.output_hidden_states
    with torch.no_grad():
        out = model(x)
    assert torch.equal(out.logits, expected) and len(out.hidden_states) == 4


def test_authors_layout_saved_again_is_in_this_packages_layout(authors_folder, tmp_path):
    """transformers writes back the names a key mapping loaded; a converted model must be saved under ours."""
    from safetensors import safe_open

    folder, x, expected = authors_folder
    BiRefNetForImageSegmentation.from_pretrained(folder).save_pretrained(tmp_path / "converted")
    with safe_open(str(tmp_path / "converted" / "model.safetensors"), framework="pt") as handle:
        keys = set(handle.keys())
    assert keys == set(BiRefNetForImageSegmentation(BiRefNetConfig(backbone="pvt_v2_b0")).state_dict())
    assert json.loads((tmp_path / "converted" / "config.json").read_text())["model_type"] == "birefnet"
    reloaded = birefnet_hf.AutoModelForImageSegmentation.from_pretrained(tmp_path / "converted")
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x).logits, expected, rtol=0, atol=1e-6)  # mmap-aligned rounding


def test_authors_layout_errors_name_the_key_and_the_file(authors_folder, tmp_path):
    from safetensors.torch import load_file, save_file

    folder, _, _ = authors_folder
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((folder / "config.json").read_text())
    state = load_file(folder / "model.safetensors")
    state["decoder.lateral_block4.conv.bias"] = torch.zeros(3)
    save_file(state, str(broken / "model.safetensors"))
    with pytest.raises(ValueError, match="shape mismatches.*decoder.lateral_block4.conv.bias"):
        BiRefNetForImageSegmentation.from_pretrained(broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(OSError, match="truncated or corrupt") as excinfo:
        BiRefNetForImageSegmentation.from_pretrained(broken)
    assert str(weights) in str(excinfo.value)


# ---------------------------------------------------------------------------- the base model (issue 17)
def test_base_model_returns_the_encoder_levels_and_decoder_features(tiny_model_dir):
    from birefnet_hf import BiRefNetModel

    segmentation = BiRefNetForImageSegmentation.from_pretrained(tiny_model_dir).eval()
    base = BiRefNetModel.from_pretrained(tiny_model_dir).eval()
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        out = base(x)
        reference = segmentation(x, output_hidden_states=True)
    config = base.config
    levels = [(64 // s, 96 // s) for s in (4, 8, 16, 32)]
    assert [tuple(h.shape) for h in out.encoder_hidden_states] == [
        (2, 2 * c, *size) for c, size in zip(config.backbone_channels, levels)  # "cat": the half-size image's too
    ]
    assert config.encoder_channels == tuple(2 * c for c in config.backbone_channels)
    c1, c2, c3, _ = config.decoder_channels
    assert [tuple(h.shape) for h in out.decoder_hidden_states] == [
        (2, c3, 2, 3), (2, c2, 4, 6), (2, c1, 8, 12), (2, c1 // 2, 16, 24)
    ]
    assert out.last_hidden_state is out.decoder_hidden_states[-1]
    for ours, theirs in zip(out.encoder_hidden_states, reference.hidden_states):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    # the segmentation model is the base model plus its full-resolution head
    with torch.no_grad():
        logits = segmentation.reconstruction._full_resolution_head(out.last_hidden_state, x)
    torch.testing.assert_close(logits, reference.logits, rtol=0, atol=0)
    as_tuple = base(x, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 3
    with pytest.raises(ValueError, match="multiples of 32"):
        base(torch.randn(1, 3, 65, 64))


def test_auto_model_loads_the_base_model_from_a_segmentation_checkpoint(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModel

    from birefnet_hf import BiRefNetModel

    base, info = AutoModel.from_pretrained(tiny_model_dir, output_loading_info=True)
    assert type(base) is BiRefNetModel
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    saved = load_file(tiny_model_dir / "model.safetensors")
    ours = base.state_dict()
    left_out = set(saved) - set(ours)  # the task's heads, nothing else
    assert left_out and all(k.startswith(("reconstruction.head.", "reconstruction.stage_heads.",
                                          "reconstruction.inward_references.4.")) for k in left_out)
    assert set(ours) <= set(saved)
    for key, value in ours.items():
        assert torch.equal(value, saved[key]), key
    # and back: the base model's checkpoint is a segmentation model without its heads
    base.save_pretrained(tmp_path / "base")
    assert set(load_file(tmp_path / "base" / "model.safetensors")) == set(ours)
    assert json.loads((tmp_path / "base" / "config.json").read_text())["architectures"] == ["BiRefNetModel"]


def test_meta_device_helper_builds_the_architecture_without_memory(tiny_config):
    from birefnet_hf import BiRefNetModel
    from birefnet_hf.modeling_birefnet import build_on_meta_device

    meta = build_on_meta_device(tiny_config)
    assert isinstance(meta, BiRefNetForImageSegmentation) and not meta.training
    assert all(t.is_meta for t in meta.state_dict().values())
    torch.manual_seed(0)
    real = BiRefNetForImageSegmentation(tiny_config).state_dict()
    assert {k: tuple(v.shape) for k, v in meta.state_dict().items()} == {k: tuple(v.shape) for k, v in real.items()}
    assert isinstance(build_on_meta_device(tiny_config, BiRefNetModel), BiRefNetModel)
