"""hub_configs/<size>/: the committed files equal the generator's output, and the generator's numbers are right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from birefnet_hf import BACKBONE_SPECS, BiRefNetConfig, BiRefNetForImageSegmentation, BiRefNetImageProcessor
from birefnet_hf.deformable_conv import modulated_deform_conv2d
from birefnet_hf.hub_configs import (
    HUB_CONFIG_FILES,
    HUB_SIZES,
    RESOLUTION,
    count_macs,
    count_parameters,
    diff_hub_configs,
    flop_counter,
    load_hub_config_folder,
    main,
    render_hub_config_files,
)
from birefnet_hf.modeling_birefnet import DeformableConv2d

REPO_HUB_CONFIGS = Path(__file__).resolve().parent.parent / "hub_configs"


def test_published_sizes_are_the_eight_backbones():
    assert HUB_SIZES == (
        "swin_v1_t", "swin_v1_s", "swin_v1_b", "swin_v1_l", "pvt_v2_b0", "pvt_v2_b1", "pvt_v2_b2", "pvt_v2_b5"
    )


def test_committed_hub_configs_equal_the_generator():
    """Regenerate every size (meta-device parameter and MAC counts at 1024x1024) and compare byte for byte."""
    problems = diff_hub_configs(REPO_HUB_CONFIGS, HUB_SIZES)
    assert problems == [], (
        "hub_configs drifted from the code; run `python -m birefnet_hf.hub_configs --output-dir hub_configs`:\n"
        + "\n".join(problems)
    )
    assert sorted(p.name for p in REPO_HUB_CONFIGS.iterdir() if p.is_dir()) == sorted(HUB_SIZES)
    for size in HUB_SIZES:
        assert sorted(p.name for p in (REPO_HUB_CONFIGS / size).iterdir()) == sorted(HUB_CONFIG_FILES)


@pytest.mark.parametrize("size", HUB_SIZES)
def test_hub_config_folder_contents(size):
    folder = load_hub_config_folder(REPO_HUB_CONFIGS / size)
    config, card = folder["config"], folder["card"]
    assert config.backbone == size
    assert config.architectures == ["BiRefNetForImageSegmentation"]
    assert config.id2label == {0: "background", 1: "foreground"}
    raw = json.loads((REPO_HUB_CONFIGS / size / "config.json").read_text())
    assert raw["model_type"] == "birefnet" and raw["backbone"] == size and "transformers_version" not in raw
    # the published config is the default architecture of that backbone
    published, default = config.to_dict(), BiRefNetConfig(backbone=size).to_dict()
    for fields in (published, default):
        fields.pop("architectures", None)
        fields.pop("transformers_version", None)
    assert published == default
    # the processor config is the default processor
    assert folder["preprocessor"] == json.loads(BiRefNetImageProcessor().to_json_string())
    assert folder["preprocessor"]["size"] == {"height": 1024, "width": 1024}
    # the card's facts
    for key in ("title", "description", "training_data", "intended_use", "limitations", "citation"):
        assert card[key], key
    assert card["license"] == "mit"
    assert size in card["title"] or card["backbone"]["name"] in card["title"]
    assert card["backbone"]["timm_name"] == BACKBONE_SPECS[size]["timm_name"]
    assert "Bilateral Reference for High-Resolution Dichotomous Image Segmentation" in card["citation"]
    assert "CAAI Artificial Intelligence Research" in card["citation"] and "2024" in card["citation"]
    for author in ("Zheng", "Gao", "Fan", "Liu", "Laaksonen", "Ouyang", "Sebe"):
        assert author in card["citation"]
    assert card["macs"]["resolution"] == list(RESOLUTION) == [1024, 1024]
    assert isinstance(card["parameters"], int) and isinstance(card["macs"]["value"], int)


def test_parameter_count_matches_a_real_model():
    config = BiRefNetConfig(backbone="pvt_v2_b0")
    model = BiRefNetForImageSegmentation(config)
    real = sum(p.numel() for p in model.parameters())
    assert count_parameters(config) == real
    card = yaml.safe_load((REPO_HUB_CONFIGS / "pvt_v2_b0" / "card.yaml").read_text())
    assert card["parameters"] == real


def test_meta_mac_count_equals_a_real_forward_count():
    """Counting on the meta device gives exactly the count of a real CPU forward (small input; the CPU samples the
    deformable convolutions with embedding_bag, the meta device with grid_sample) when attention runs as plain matrix
    products, which is what it does on the meta device (PyTorch's fused CPU attention kernel has no FLOP formula and
    would be left out)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    config = BiRefNetConfig(backbone="pvt_v2_b0")
    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(config).eval()
    with sdpa_kernel(SDPBackend.MATH):
        real = count_macs(config, (64, 96), model=model)
    assert count_macs(config, (64, 96)) == real


@pytest.mark.parametrize("sampler", ["gather", "grid_sample"])
@pytest.mark.parametrize("grad", [False, True])
def test_deformable_convolution_macs_are_counted(sampler, grad):
    """The generator adds the deformable convolution's bilinear sampling (4 MACs per sampled value) whichever sampler
    runs, and the weight product also where it is a direct oneDNN call (CPU gather path without autograd), so one
    layer costs exactly: offset + modulator convs + product + sampling."""
    channels, out_channels, kernel, height, width = 8, 16, 3, 10, 12
    layer = DeformableConv2d(channels, out_channels, kernel, padding=1)
    x = torch.randn(1, channels, height, width)
    taps, positions = kernel * kernel, height * width
    conv_macs = (2 * taps + taps) * channels * taps * positions  # offset (2K) and modulator (K) convolutions
    product_macs = out_channels * channels * taps * positions
    sampling_macs = 4 * channels * taps * positions

    def forward():
        with torch.set_grad_enabled(grad):
            offset = layer.offset_conv(x)
            modulator = 2.0 * torch.sigmoid(layer.modulator_conv(x))
            return modulated_deform_conv2d(x, offset, modulator, layer.regular_conv.weight, padding=(1, 1), sampler=sampler)

    plain = FlopCounterMode(display=False)
    with plain:
        forward()
    # PyTorch has no formula for the sampling, nor for the direct oneDNN product of the CPU inference path
    onednn_product = sampler == "gather" and not grad
    assert plain.get_total_flops() == 2 * (conv_macs + (0 if onednn_product else product_macs))

    counter = flop_counter()
    with counter:
        forward()
    assert counter.get_total_flops() == 2 * (conv_macs + product_macs + sampling_macs)


def test_generator_cli_writes_and_checks(tmp_path, capsys):
    assert main(["--output-dir", str(tmp_path), "--only", "pvt_v2_b0"]) == 0
    for name, text in render_hub_config_files("pvt_v2_b0").items():
        assert (tmp_path / "pvt_v2_b0" / name).read_text() == text
        assert (tmp_path / "pvt_v2_b0" / name).read_text() == (REPO_HUB_CONFIGS / "pvt_v2_b0" / name).read_text()
    assert not [p for p in (tmp_path / "pvt_v2_b0").iterdir() if p.name.startswith(".")]  # no temp files left
    assert main(["--output-dir", str(tmp_path), "--only", "pvt_v2_b0", "--check"]) == 0

    card = tmp_path / "pvt_v2_b0" / "card.yaml"
    card.write_text(card.read_text().replace("parameters:", "parameters: 1 #"))
    assert main(["--output-dir", str(tmp_path), "--only", "pvt_v2_b0", "--check"]) == 1
    assert "card.yaml: differs" in capsys.readouterr().err
    (tmp_path / "pvt_v2_b0" / "config.json").unlink()
    assert main(["--output-dir", str(tmp_path), "--only", "pvt_v2_b0", "--check"]) == 1
    assert "config.json: missing" in capsys.readouterr().err


def test_load_hub_config_folder_errors_name_the_file(tmp_path):
    main(["--output-dir", str(tmp_path), "--only", "pvt_v2_b0"])
    folder = tmp_path / "pvt_v2_b0"
    (folder / "card.yaml").write_text("size: [unclosed\n")
    with pytest.raises(ValueError, match="card.yaml"):
        load_hub_config_folder(folder)
    (folder / "card.yaml").write_text("size: pvt_v2_b1\n")
    with pytest.raises(ValueError, match="lacks the fields"):
        load_hub_config_folder(folder)
    (folder / "preprocessor_config.json").unlink()
    with pytest.raises(FileNotFoundError, match="preprocessor_config.json"):
        load_hub_config_folder(folder)
