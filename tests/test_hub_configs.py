# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
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
from birefnet_hf.families import FAMILIES, family_config
from birefnet_hf.hub_configs import (
    ALL_SIZES,
    EXTRA_SIZES,
    FAMILIES_FOLDER,
    HUB_CONFIG_FILES,
    HUB_SIZES,
    RESOLUTION,
    MetaMeasurements,
    count_macs,
    count_parameters,
    diff_hub_configs,
    family_resolution,
    flop_counter,
    load_hub_config_folder,
    main,
    render_hub_config_files,
)
from birefnet_hf.modeling_birefnet import DeformableConv2d

REPO_HUB_CONFIGS = Path(__file__).resolve().parent.parent / "birefnet_hf" / "hub_configs_data"


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
    assert sorted(p.name for p in REPO_HUB_CONFIGS.iterdir() if p.is_dir()) == sorted(ALL_SIZES + (FAMILIES_FOLDER,))
    assert sorted(p.name for p in (REPO_HUB_CONFIGS / FAMILIES_FOLDER).iterdir()) == sorted(FAMILIES)
    for folder in [*ALL_SIZES, *(f"{FAMILIES_FOLDER}/{name}" for name in FAMILIES)]:
        assert sorted(p.name for p in (REPO_HUB_CONFIGS / folder).iterdir()) == sorted(HUB_CONFIG_FILES), folder


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


# ------------------------------------------------------------------- further backbones and released families
FAMILY_FOLDERS = {name: REPO_HUB_CONFIGS / FAMILIES_FOLDER / name for name in FAMILIES}


def _committed_measurements():
    """A ``measure`` that returns the parameter and MAC counts of the committed cards (keyed by architecture and
    resolution, the way MetaMeasurements caches), so that the text of every folder can be regenerated in a second;
    cards of the same architecture and resolution must agree."""
    from birefnet_hf.hub_configs import _architecture_key

    table = {}
    for folder in [REPO_HUB_CONFIGS / size for size in ALL_SIZES] + list(FAMILY_FOLDERS.values()):
        loaded = load_hub_config_folder(folder)
        card = loaded["card"]
        key = (_architecture_key(loaded["config"]), tuple(card["macs"]["resolution"]))
        numbers = (card["parameters"], card["macs"]["value"])
        assert table.setdefault(key, numbers) == numbers, f"{folder}: other counts than a card of the same model"
    return lambda config, resolution: table[_architecture_key(config), tuple(int(side) for side in resolution)]


def test_further_backbone_and_family_folders_equal_the_generator():
    """Every text of hub_configs/<vgg16 .. dino_v3_7b>/ and hub_configs/families/<name>/ is what the code writes (the
    counts are taken from the committed cards here; they are measured in the tests below)."""
    problems = diff_hub_configs(REPO_HUB_CONFIGS, EXTRA_SIZES, FAMILIES, measure=_committed_measurements())
    assert problems == [], (
        "hub_configs drifted from the code; run `python -m birefnet_hf.hub_configs --output-dir hub_configs`:\n"
        + "\n".join(problems)
    )


def test_generator_cli_measures_a_backbone_and_a_family_at_its_native_size(tmp_path, capsys):
    """The CLI writes vgg16 (1024x1024) and BiRefNet_lite-2K (Swin-T at 1440x2560) exactly as committed: the counts
    of the committed cards are the meta-device measurements at the native size."""
    assert main(["--output-dir", str(tmp_path), "--only", "vgg16", "--family", "BiRefNet_lite-2K"]) == 0
    for folder in ("vgg16", f"{FAMILIES_FOLDER}/BiRefNet_lite-2K"):
        for name in HUB_CONFIG_FILES:
            assert (tmp_path / folder / name).read_text() == (REPO_HUB_CONFIGS / folder / name).read_text(), folder
    card = yaml.safe_load((tmp_path / FAMILIES_FOLDER / "BiRefNet_lite-2K" / "card.yaml").read_text())
    assert card["macs"]["resolution"] == [1440, 2560] and "1x3x1440x2560" in card["macs"]["counted"]
    swin_t = yaml.safe_load((REPO_HUB_CONFIGS / "swin_v1_t" / "card.yaml").read_text())
    assert card["parameters"] == swin_t["parameters"] and card["macs"]["value"] > 3 * swin_t["macs"]["value"]
    assert main(["--output-dir", str(tmp_path), "--family", "BiRefNet_lite-2K", "--only", "vgg16", "--check"]) == 0
    card_path = tmp_path / FAMILIES_FOLDER / "BiRefNet_lite-2K" / "preprocessor_config.json"
    card_path.write_text(card_path.read_text().replace("2560", "1024"))
    assert main(["--output-dir", str(tmp_path), "--family", "BiRefNet_lite-2K", "--check"]) == 1
    assert "BiRefNet_lite-2K/preprocessor_config.json: differs" in capsys.readouterr().err


@pytest.mark.slow
def test_further_backbone_and_family_folders_equal_the_generator_measured():
    """The same, with every count measured on the meta device (dino_v3_7b included: shapes only, no memory)."""
    assert diff_hub_configs(REPO_HUB_CONFIGS, EXTRA_SIZES, FAMILIES) == []


def test_meta_measurements_build_each_architecture_once(monkeypatch):
    """Configs that differ only in loss weights share one meta model and one count per resolution."""
    import birefnet_hf.hub_configs as hub_configs

    built = []
    build = hub_configs._build_on_meta
    monkeypatch.setattr(hub_configs, "_build_on_meta", lambda config: built.append(config) or build(config))
    measure = MetaMeasurements()
    general = BiRefNetConfig(backbone="pvt_v2_b0", loss_mae_weight=100.0)
    matting = BiRefNetConfig(backbone="pvt_v2_b0", loss_iou_weight=0.0, loss_mae_weight=100.0)
    first = measure(general, (64, 96))
    assert measure(matting, (64, 96)) == first and len(built) == 1
    wider = measure(matting, (64, 128))
    assert wider[0] == first[0] and wider[1] > first[1] and len(built) == 1
    assert measure(BiRefNetConfig(backbone="pvt_v2_b0", multi_scale_input="none"), (64, 96))[1] < first[1]
    assert len(built) == 2
    assert first == (count_parameters(general), count_macs(general, (64, 96)))


@pytest.mark.parametrize("size", EXTRA_SIZES)
def test_further_backbone_folder_contents(size):
    folder = load_hub_config_folder(REPO_HUB_CONFIGS / size)
    config, card = folder["config"], folder["card"]
    published, default = config.to_dict(), BiRefNetConfig(backbone=size).to_dict()
    for fields in (published, default):
        fields.pop("architectures", None)
        fields.pop("transformers_version", None)
    assert published == default and config.architectures == ["BiRefNetForImageSegmentation"]
    assert folder["preprocessor"]["size"] == {"height": 1024, "width": 1024}
    assert card["macs"]["resolution"] == [1024, 1024] and card["license"] == "mit"
    spec = BACKBONE_SPECS[size]
    if spec["family"] == "torchvision":
        assert card["backbone"]["torchvision_name"] == spec["torchvision_name"]
        assert card["backbone"]["pretraining"].startswith("ImageNet-1k (torchvision weights IMAGENET1K_V")
    else:
        assert card["backbone"]["timm_name"] == spec["timm_name"] and card["backbone"]["frozen"] is True
        assert card["backbone"]["out_indices"] == list(spec["out_indices"])
        assert "frozen" in card["description"]
    if size == "dino_v3_7b":  # 6.7 B backbone parameters, counted on the meta device
        assert card["parameters"] > 6.7e9 and card["macs"]["value"] > 10 * card["parameters"]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_folder_contents(name):
    """Each family's folder: its config (backbone + switches), its processor at the native size (or the dynamic rule)
    loading through AutoImageProcessor, its licence, and the authors' figures labelled as quotes."""
    from transformers import AutoImageProcessor

    family = FAMILIES[name]
    folder = load_hub_config_folder(FAMILY_FOLDERS[name])
    config, card = folder["config"], folder["card"]
    assert config.to_dict() | {"transformers_version": None} == family_config(family).to_dict() | {
        "transformers_version": None
    }
    assert folder["preprocessor"]["size"] == family.size.processor_size()
    processor = AutoImageProcessor.from_pretrained(FAMILY_FOLDERS[name])
    assert isinstance(processor, BiRefNetImageProcessor)
    assert {k: v for k, v in dict(processor.size).items() if v is not None} == family.size.processor_size()
    assert card["family"] == name and card["hub_id"] == family.hub_id and card["use"] == family.use
    assert card["license"] == family.license and card["gated"] == family.gated
    assert card["macs"]["resolution"] == card["input_resolution"] == list(family_resolution(family))
    backbone_card = yaml.safe_load((REPO_HUB_CONFIGS / family.backbone / "card.yaml").read_text())
    assert card["parameters"] == backbone_card["parameters"]
    assert len(card["quoted_figures"]) == len(family.figures)
    for quoted, figure in zip(card["quoted_figures"], family.figures, strict=True):
        assert quoted["quoted_from"] == figure.source and quoted["metrics"] == dict(figure.metrics)
    assert card["not_found"] == list(family.not_found)
    if name == "RMBG-2.0":
        assert card["license"] == "cc-by-nc-4.0" and card["gated"] and not card["commercial_use"]
        assert "Non-commercial" in card["limitations"][0]


def test_family_sizes_and_counts():
    cards = {name: yaml.safe_load((folder / "card.yaml").read_text()) for name, folder in FAMILY_FOLDERS.items()}
    assert cards["BiRefNet_HR"]["input_resolution"] == [2048, 2048]
    assert cards["BiRefNet_lite-2K"]["input_resolution"] == [1440, 2560]
    assert cards["BiRefNet_512x512"]["input_resolution"] == [512, 512]
    assert cards["BiRefNet_dynamic"]["input_size"]["processor_size"] == {"longest_edge": 2304}
    assert cards["BiRefNet_dynamic"]["input_resolution"] == [2304, 2304]
    swin_l = yaml.safe_load((REPO_HUB_CONFIGS / "swin_v1_l" / "card.yaml").read_text())
    assert cards["BiRefNet"]["macs"]["value"] == swin_l["macs"]["value"]  # same model, same size
    # MACs grow roughly with the input area (4x from 1024 to 2048)
    assert cards["BiRefNet_HR"]["macs"]["value"] > 3 * cards["BiRefNet"]["macs"]["value"]
    assert cards["BiRefNet_512x512"]["macs"]["value"] < cards["BiRefNet"]["macs"]["value"] / 3


def test_hub_configs_are_package_data():
    """The folder ships inside the package (so `birefnet-hf publish` works from a wheel): it is the default of the
    generator and of publish, and setup.cfg declares every file of it as package data (tests/test_wheel.py, slow,
    builds and installs the wheel)."""
    import configparser
    import fnmatch

    from birefnet_hf.hub_configs import HUB_CONFIGS_DIR
    from birefnet_hf.publish import build_parser, default_hub_configs

    package = Path(__file__).resolve().parent.parent / "birefnet_hf"
    assert HUB_CONFIGS_DIR == REPO_HUB_CONFIGS and HUB_CONFIGS_DIR.parent == package
    assert default_hub_configs() == HUB_CONFIGS_DIR
    assert build_parser().parse_args([]).hub_configs is None  # None: publish falls back to the package's folder
    assert not (package.parent / "hub_configs").exists()  # no second copy at the repository root

    setup = configparser.ConfigParser()
    setup.read(package.parent / "setup.cfg")
    patterns = [line.strip() for line in setup["options.package_data"]["birefnet_hf"].splitlines() if line.strip()]
    files = [path.relative_to(package).as_posix() for path in HUB_CONFIGS_DIR.rglob("*") if path.is_file()]
    assert len(files) == 3 * (len(ALL_SIZES) + len(FAMILIES))
    undeclared = [name for name in files if not any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)]
    assert not undeclared, f"not declared as package data in setup.cfg: {undeclared[:5]}"


def test_generator_default_folder_is_the_packages(monkeypatch, tmp_path, capsys):
    """Without --output-dir the generator checks and writes the package's own folder (HUB_CONFIGS_DIR)."""
    import birefnet_hf.hub_configs as hub_configs

    assert main(["--only", "pvt_v2_b0", "--check"]) == 0  # the committed package folder is in sync
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setattr(hub_configs, "HUB_CONFIGS_DIR", elsewhere)
    assert main(["--only", "pvt_v2_b0", "--check"]) == 1
    assert f"{elsewhere / 'pvt_v2_b0' / 'config.json'}: missing" in capsys.readouterr().err
    assert main(["--only", "pvt_v2_b0"]) == 0
    assert sorted(path.name for path in (elsewhere / "pvt_v2_b0").iterdir()) == sorted(HUB_CONFIG_FILES)
