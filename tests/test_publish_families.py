# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""`birefnet-hf publish --family / --all-families`: converted repositories of the released families, built offline
from local folders standing in for the authors' Hub repositories (their layout: ``config.json`` without
``model_type`` + ``model.safetensors`` with the authors' keys in fp16, filled with the parity recipe), their cards,
their native-size ``preprocessor_config.json`` (AutoImageProcessor works on them directly), and every refusal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import PIL.Image
import pytest
import torch
import yaml
from huggingface_hub import ModelCard
from safetensors.torch import load_file, save_file
from transformers import AutoImageProcessor, AutoModelForImageSegmentation

from birefnet_hf import BiRefNetForImageSegmentation, BiRefNetImageProcessor
from birefnet_hf.convert_birefnet_original_to_hf import rename_original_key
from birefnet_hf.families import FAMILIES
from birefnet_hf.publish import main
from parity_recipe import official_state_dict

REPO_HUB_CONFIGS = Path(__file__).resolve().parent.parent / "birefnet_hf" / "hub_configs_data"
AUTHORS_CONFIG = {
    "architectures": ["BiRefNet"],
    "auto_map": {"AutoConfig": "BiRefNet_config.BiRefNetConfig", "AutoModelForImageSegmentation": "birefnet.BiRefNet"},
    "bb_pretrained": False,
}


def _authors_folder(root: Path, name: str) -> Path:
    """A folder standing in for the family's Hub repository, in the authors' layout (their Hub weights are fp16)."""
    family = FAMILIES[name]
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(AUTHORS_CONFIG))
    state = {
        key: (value.half() if value.is_floating_point() else value).contiguous()
        for key, value in official_state_dict(family.backbone).items()
    }
    save_file(state, str(folder / "model.safetensors"))
    return folder


@pytest.fixture(scope="module")
def lite_2k_folder(tmp_path_factory) -> Path:
    """BiRefNet_lite-2K (Swin-T, 1440x2560) in the authors' layout."""
    return _authors_folder(tmp_path_factory.mktemp("authors"), "BiRefNet_lite-2K")


def _error(capsys) -> str:
    return capsys.readouterr().err


def test_family_dry_run_from_an_authors_folder(tmp_path, capsys, lite_2k_folder):
    output = tmp_path / "out"
    code = main(
        [
            "--family", "BiRefNet_lite-2K", "--checkpoint", f"BiRefNet_lite-2K={lite_2k_folder}",
            "--repo-id", "BiRefNet_lite-2K=my-org/BiRefNet_lite-2K-hf",
            "--dry-run", "--output-dir", str(output), "--no-check-remote-code",
        ]
    )
    assert code == 0, _error(capsys)
    assert sorted(p.name for p in output.iterdir()) == ["BiRefNet_lite-2K"]  # no staging leftovers
    folder = output / "BiRefNet_lite-2K"
    config = json.loads((folder / "config.json").read_text())
    assert config["backbone"] == "swin_v1_t" and config["loss_mae_weight"] == 100.0

    # the weights are the authors' tensors under our names (fp16 -> fp32, exactly), every one of them
    authors = load_file(lite_2k_folder / "model.safetensors")
    saved = load_file(folder / "model.safetensors")
    renamed = {rename_original_key(key, "swin_v1_t"): value for key, value in authors.items()}
    renamed.pop(None, None)  # buffers the model computes (relative_position_index)
    assert saved.keys() == renamed.keys()
    for key, value in saved.items():
        torch.testing.assert_close(value, renamed[key].to(value.dtype), rtol=0, atol=0)
        assert value.dtype == (torch.float32 if renamed[key].is_floating_point() else renamed[key].dtype)

    # the repository has a preprocessor_config.json at the family's native size: AutoImageProcessor needs no size
    assert json.loads((folder / "preprocessor_config.json").read_text())["size"] == {"height": 1440, "width": 2560}
    processor = AutoImageProcessor.from_pretrained(folder)
    assert isinstance(processor, BiRefNetImageProcessor)
    pixel_values = processor(PIL.Image.new("RGB", (300, 200)), return_tensors="pt")["pixel_values"]
    assert tuple(pixel_values.shape) == (1, 3, 1440, 2560)
    model = AutoModelForImageSegmentation.from_pretrained(folder).eval()
    assert type(model) is BiRefNetForImageSegmentation and model.config.backbone == "swin_v1_t"
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(1, 3, 64, 96)).logits).all()

    # the family's card: its facts, the authors' figures labelled as quotes and kept out of the model-index
    card = ModelCard.load(folder / "README.md")
    assert card.data.license == "mit" and card.data.pipeline_tag == "image-segmentation"
    assert not card.data.eval_results and "birefnet_lite-2k" in card.data.tags
    text = card.text
    facts = yaml.safe_load((REPO_HUB_CONFIGS / "families" / "BiRefNet_lite-2K" / "card.yaml").read_text())
    assert f"{facts['parameters']:,}" in text and f"{facts['macs']['value'] / 1e9:.1f} G" in text
    assert "MACs at 1440x2560" in text and "1440x2560 (height x width, fixed non-square)" in text
    assert "### Figures published by the authors (quoted)" in text and "maxFm 0.867, wFmeasure 0.831" in text
    assert "model card of ZhengPeng7/BiRefNet_lite-2K (epoch 232)" in text
    assert "[`ZhengPeng7/BiRefNet_lite-2K`](https://huggingface.co/ZhengPeng7/BiRefNet_lite-2K)" in text
    assert 'AutoImageProcessor.from_pretrained("my-org/BiRefNet_lite-2K-hf")' in text
    assert "No evaluation results are attached" in text
    assert "Not found in those sources" not in text  # this family lacks no fact


def test_family_option_errors(tmp_path, capsys):
    out = ["--dry-run", "--output-dir", str(tmp_path / "out")]
    # RMBG-2.0 only under its own licence (checked before any weights are read)
    assert main(["--family", "RMBG-2.0", "--license", "mit", "--random-init", *out]) == 2
    error = _error(capsys)
    assert "RMBG-2.0 is licensed cc-by-nc-4.0" in error and "cannot be published under 'mit'" in error
    assert main(["--family", "BiRefNet_XL", "--random-init", *out]) == 2
    assert "unknown BiRefNet family 'BiRefNet_XL'" in _error(capsys)
    assert main(["--family", "BiRefNet_HR", "--all-families", "--random-init", *out]) == 2
    assert "give one of them" in _error(capsys)
    assert main(["--family", "BiRefNet_HR", "--only", "swin_v1_l", "--random-init", *out]) == 2
    assert "--only selects backbone sizes" in _error(capsys)
    assert main(["--family", "BiRefNet_HR", "--weights-dir", f"BiRefNet_HR={tmp_path}", *out]) == 2
    assert "--weights-dir is not used with --family" in _error(capsys)
    assert main(["--family", "BiRefNet_HR", "--checkpoint", f"BiRefNet_HR={tmp_path / 'nope'}", *out]) == 2
    assert f"--checkpoint BiRefNet_HR: {tmp_path / 'nope'} not found" in _error(capsys)
    assert main(["--family", "BiRefNet_HR", "--checkpoint", str(tmp_path / "{size}"), *out]) == 2
    assert "a pattern containing {family}" in _error(capsys)
    assert main(["--family", "BiRefNet_HR", "--random-init"]) == 2
    assert "--dry-run" in _error(capsys)
    assert main(["--only", "pvt_v2_b0", "--license", "apache-2.0", "--random-init", *out]) == 2
    assert "published under their licence, mit" in _error(capsys)
    assert not (tmp_path / "out").exists()


def test_all_families_need_a_checkpoint_each(tmp_path, capsys):
    """--all-families selects the sixteen families; a {family} pattern names each one's checkpoint, and every
    family without one is listed before anything is read or built."""
    checkpoints = tmp_path / "downloads"
    checkpoints.mkdir()
    code = main(["--all-families", "--checkpoint", str(checkpoints / "{family}"), "--dry-run",
                 "--output-dir", str(tmp_path / "out")])
    assert code == 2
    error = _error(capsys)
    for name in FAMILIES:
        assert f"--checkpoint {name}: {checkpoints / name} not found" in error
    assert main(["--all-families", "--dry-run", "--output-dir", str(tmp_path / "out")]) == 2
    error = _error(capsys)
    assert all(f"{name}: no weights" in error for name in FAMILIES)
    assert not (tmp_path / "out").exists()


def test_family_checkpoint_refusals(tmp_path, capsys, lite_2k_folder):
    out = ["--dry-run", "--output-dir", str(tmp_path / "out"), "--no-check-remote-code"]
    # the Swin-T checkpoint given for a Swin-L family
    assert main(["--family", "BiRefNet_HR", "--checkpoint", f"BiRefNet_HR={lite_2k_folder}", *out]) == 2
    assert "holds a swin_v1_t model, not swin_v1_l" in _error(capsys)
    # a folder that is not in the authors' layout
    converted = tmp_path / "converted"
    converted.mkdir()
    (converted / "config.json").write_text(json.dumps({"model_type": "birefnet", "backbone": "swin_v1_t"}))
    (converted / "model.safetensors").write_bytes(b"")
    assert main(["--family", "BiRefNet_lite", "--checkpoint", f"BiRefNet_lite={converted}", *out]) == 2
    assert "is not an authors' BiRefNet config" in _error(capsys)
    (converted / "model.safetensors").unlink()
    assert main(["--family", "BiRefNet_lite", "--checkpoint", f"BiRefNet_lite={converted}", *out]) == 2
    assert "needs config.json and model.safetensors" in _error(capsys)
    # the authors' pre-2024 layout is named
    early = tmp_path / "BiRefNet-early.safetensors"
    save_file({"locate_header.0.weight": torch.zeros(2, 2), "bb.layers.0.blocks.0.norm1.weight": torch.zeros(2)},
              str(early))
    assert main(["--family", "BiRefNet", "--checkpoint", f"BiRefNet={early}", *out]) == 2
    assert "pre-2024 BiRefNet layout" in _error(capsys)
    assert not (tmp_path / "out").exists()


def test_a_family_card_under_another_licence_is_refused(tmp_path, capsys):
    """hub_configs/families/RMBG-2.0/card.yaml edited to MIT: refused before anything is built."""
    hub_root = tmp_path / "hub_configs"
    shutil.copytree(REPO_HUB_CONFIGS / "families" / "RMBG-2.0", hub_root / "families" / "RMBG-2.0")
    card_path = hub_root / "families" / "RMBG-2.0" / "card.yaml"
    card_path.write_text(card_path.read_text().replace("license: cc-by-nc-4.0", "license: mit"))
    code = main(["--family", "briaai/RMBG-2.0", "--random-init", "--dry-run", "--output-dir", str(tmp_path / "out"),
                 "--hub-configs", str(hub_root)])
    assert code == 2
    error = _error(capsys)
    assert str(card_path) in error and "cannot be published under 'mit'" in error
    assert not (tmp_path / "out").exists()


def test_rmbg_card_is_non_commercial_and_gated():
    from birefnet_hf.model_card import WeightsSource, build_model_card

    facts = yaml.safe_load((REPO_HUB_CONFIGS / "families" / "RMBG-2.0" / "card.yaml").read_text())
    card = build_model_card(facts, "me/RMBG-2.0-hf", WeightsSource("converted", "/x/RMBG-2.0/model.safetensors"))
    assert card.data.license == "cc-by-nc-4.0"
    assert "gated" in card.data.to_dict()["extra_gated_prompt"]
    assert "**Non-commercial use only (cc-by-nc-4.0).**" in card.text and "under no other" in card.text
    assert "[`briaai/RMBG-2.0`](https://huggingface.co/briaai/RMBG-2.0)" in card.text
    assert "No figures for this checkpoint were found" in card.text


@pytest.mark.slow
@pytest.mark.parametrize("name, size", [("BiRefNet_dynamic", {"longest_edge": 2304}), ("RMBG-2.0", None)])
def test_swin_l_family_dry_run_with_the_remote_code_check(tmp_path, capsys, name, size):
    """A Swin-L family from an authors'-layout folder, with the fresh-process trust_remote_code check."""
    source = _authors_folder(tmp_path / "authors", name)
    output = tmp_path / "out"
    assert main(["--family", name, "--checkpoint", f"{name}={source}", "--dry-run", "--output-dir", str(output)]) == 0
    folder = output / name
    expected = size or {"height": 1024, "width": 1024}
    assert json.loads((folder / "preprocessor_config.json").read_text())["size"] == expected
    processor = AutoImageProcessor.from_pretrained(folder)
    assert {k: v for k, v in dict(processor.size).items() if v is not None} == expected
    card = ModelCard.load(folder / "README.md")
    assert card.data.license == FAMILIES[name].license


def test_authors_layout_has_no_processor_config_so_image_processor_for_is_the_route(tmp_path):
    """On an authors'-layout repository transformers' AutoImageProcessor fails before any hook of this package can
    run (no preprocessor_config.json): image_processor_for(ID) is the supported route there, and the converted
    repositories built by publish --family carry the file (test above)."""
    from birefnet_hf.families import image_processor_for

    folder = tmp_path / "ZhengPeng7" / "BiRefNet_HR"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(AUTHORS_CONFIG))
    with pytest.raises(OSError, match="preprocessor_config.json"):
        AutoImageProcessor.from_pretrained(folder)
    processor = image_processor_for(folder)
    assert (processor.size.height, processor.size.width) == (2048, 2048)


def test_write_hub_configs_of_a_family(tmp_path, capsys):
    """`publish --write-hub-configs DIR --family NAME` writes DIR/families/NAME/ as committed."""
    assert main(["--write-hub-configs", str(tmp_path), "--family", "BiRefNet_lite"]) == 0
    written = tmp_path / "families" / "BiRefNet_lite"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["families"]
    for name in ("config.json", "preprocessor_config.json", "card.yaml"):
        assert (written / name).read_text() == (REPO_HUB_CONFIGS / "families" / "BiRefNet_lite" / name).read_text()
    with pytest.raises(SystemExit):
        main(["--write-hub-configs", str(tmp_path), "--family", "BiRefNet_XL"])
    assert "unknown BiRefNet family 'BiRefNet_XL'" in _error(capsys)
