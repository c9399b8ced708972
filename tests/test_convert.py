# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Checkpoint conversion from the authors' format: key mapping for every backbone, config inference, CLI, errors,
and loading a folder in the authors' Hub layout."""

import json
import os
import stat

import pytest
import torch
from parity_recipe import FIXTURES, official_manifest, official_state_dict
from safetensors.torch import save_file

from birefnet_hf import BACKBONE_SPECS, AutoModelForImageSegmentation, BiRefNetForImageSegmentation
from birefnet_hf.cli import main as cli_main
from birefnet_hf.convert_birefnet_original_to_hf import (
    convert_checkpoint,
    convert_state_dict,
    infer_config_from_state_dict,
    load_original_state_dict,
    main as convert_main,
)


@pytest.mark.parametrize("backbone", sorted(path.stem for path in (FIXTURES / "keys").glob("*.json")))
def test_every_backbone_manifest_maps_onto_our_model(backbone):
    """Each official key (per the authors' manifest) lands on exactly one of our parameters, with its shape."""
    manifest = {key: torch.empty(shape, device="meta") for key, shape, _ in official_manifest(backbone)}
    config = infer_config_from_state_dict(manifest)
    assert config.backbone == backbone
    assert (config.multi_scale_input, config.context_feature_fusion_levels, config.decoder_attention) == (
        "cat", 3, "aspp_deformable")
    assert config.deformable_kernel_sizes == [1, 3, 7] and config.use_batch_norm and config.outward_reference
    with torch.device("meta"):
        model = BiRefNetForImageSegmentation(config)
    converted = convert_state_dict(manifest, config, model.state_dict())
    assert len(converted) == len(model.state_dict())
    computed = [k for k in manifest if k.endswith("relative_position_index")]
    assert len(converted) == len(manifest) - len(computed)


@pytest.mark.parametrize("other", ["resnet50", "vgg16"])
def test_unknown_backbones_are_a_clear_error(other):
    """A backbone none of the known ones matches (here: a torchvision stem of an unknown shape)."""
    manifest = {key: torch.empty(shape, device="meta") for key, shape, _ in official_manifest(other)}
    manifest["bb.conv1.0.weight"] = torch.empty(32, 3, 5, 5, device="meta")
    with pytest.raises(ValueError, match="cannot infer the backbone"):
        infer_config_from_state_dict(manifest)


@pytest.fixture(scope="module")
def pvt_state_dict():
    return official_state_dict("pvt_v2_b0")


@pytest.fixture(scope="module")
def pvt_reference_logits(pvt_state_dict):
    model = convert_checkpoint(pvt_state_dict)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return x, model(x).logits


def test_cli_converts_a_ddp_pth_checkpoint(tmp_path, pvt_state_dict, pvt_reference_logits):
    checkpoint = tmp_path / "BiRefNet-epoch_1.pth"
    torch.save({f"module.{k}": v for k, v in pvt_state_dict.items()}, checkpoint)
    out_dir = tmp_path / "converted"
    assert convert_main(["--checkpoint", str(checkpoint), "--output_dir", str(out_dir)]) == 0
    model = AutoModelForImageSegmentation.from_pretrained(out_dir).eval()
    assert model.config.backbone == "pvt_v2_b0"
    x, expected = pvt_reference_logits
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, expected, rtol=0, atol=1e-6)  # mmap-aligned rounding


def test_console_script_converts_compiled_safetensors(tmp_path, pvt_state_dict, pvt_reference_logits):
    checkpoint = tmp_path / "model.safetensors"
    save_file({f"_orig_mod.{k}": v.contiguous() for k, v in pvt_state_dict.items()}, str(checkpoint))
    out_dir = tmp_path / "converted"
    code = cli_main(["convert", "--checkpoint", str(checkpoint), "--backbone", "pvt_v2_b0", "--output_dir", str(out_dir)])
    assert code == 0
    model = AutoModelForImageSegmentation.from_pretrained(out_dir).eval()
    x, expected = pvt_reference_logits
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, expected, rtol=0, atol=1e-6)


def test_wrong_backbone_flag_is_an_error(pvt_state_dict):
    with pytest.raises(ValueError, match="pvt_v2_b0"):
        convert_checkpoint(pvt_state_dict, "pvt_v2_b1")


@pytest.mark.parametrize("flag", ["swin_v1_l", "swin_v1_t", "pvt_v2_b2"])
def test_wrong_backbone_flag_names_the_backbone_not_a_decoder_width(pvt_state_dict, flag):
    # another family or width: the message is about the backbone, not a squeeze-block width that fits nothing
    with pytest.raises(ValueError, match=f"--backbone {flag} does not match the checkpoint.*pvt_v2_b0") as excinfo:
        infer_config_from_state_dict(pvt_state_dict, flag)
    assert "squeeze" not in str(excinfo.value)


def test_cli_reports_a_wrong_backbone_with_exit_code_2(tmp_path, pvt_state_dict, capsys):
    checkpoint = tmp_path / "pvt.pth"
    torch.save(pvt_state_dict, checkpoint)
    arguments = ["--checkpoint", str(checkpoint), "--backbone", "swin_v1_l", "--output_dir", str(tmp_path / "o")]
    code = cli_main(["convert", *arguments])
    assert code == 2
    assert "--backbone swin_v1_l does not match" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_output_folder_gets_the_users_umask(tmp_path, pvt_state_dict, umask):
    """The folder is staged with mkdtemp (0700) and safetensors writes 0600 files; the result must look like any
    folder the user creates."""
    checkpoint = tmp_path / "pvt.pth"
    torch.save(pvt_state_dict, checkpoint)
    out = tmp_path / "converted"
    previous = os.umask(umask)
    try:
        assert convert_main(["--checkpoint", str(checkpoint), "--output_dir", str(out)]) == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask
    files = sorted(out.iterdir())
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= {f.name for f in files}
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o666 & ~umask, file.name


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda sd: sd.pop("decoder.conv_out1.0.weight"), "missing keys.*reconstruction.head.weight"),
        (lambda sd: sd.__setitem__("decoder.mystery.weight", torch.zeros(1)), "unexpected keys.*decoder.mystery.weight"),
        (lambda sd: sd.__setitem__("decoder.lateral_block4.conv.bias", torch.zeros(3)),
         "shape mismatches.*decoder.lateral_block4.conv.bias"),
    ],
    ids=["missing", "unexpected", "mis-shaped"],
)
def test_key_problems_name_the_key(pvt_state_dict, edit, message):
    broken = dict(pvt_state_dict)
    edit(broken)
    with pytest.raises(ValueError, match=message):
        convert_checkpoint(broken)


def test_no_half_written_output_on_failure(tmp_path, pvt_state_dict, capsys):
    broken = dict(pvt_state_dict)
    broken["decoder.lateral_block4.conv.bias"] = torch.zeros(3)
    checkpoint = tmp_path / "broken.pth"
    torch.save(broken, checkpoint)
    assert convert_main(["--checkpoint", str(checkpoint), "--output_dir", str(tmp_path / "out")]) == 2
    assert "decoder.lateral_block4.conv.bias" in capsys.readouterr().err  # a message, not a traceback
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["broken.pth"]


def test_existing_output_dir_is_not_overwritten(tmp_path, pvt_state_dict, capsys):
    checkpoint = tmp_path / "ok.pth"
    torch.save(pvt_state_dict, checkpoint)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    with pytest.raises(SystemExit) as excinfo:  # a usage error, found before the checkpoint is read
        convert_main(["--checkpoint", str(checkpoint), "--output_dir", str(out)])
    assert excinfo.value.code == 2 and "not an empty folder" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "user data"
    a_file = tmp_path / "a_file"
    a_file.write_text("user data")
    with pytest.raises(SystemExit):
        convert_main(["--checkpoint", str(checkpoint), "--output_dir", str(a_file)])
    assert a_file.read_text() == "user data"


def test_pickled_objects_are_refused(tmp_path):
    import argparse

    checkpoint = tmp_path / "evil.pth"
    torch.save({"weights": argparse.Namespace(code="not a tensor")}, checkpoint)  # any non-tensor object
    with pytest.raises(ValueError, match="weights-only"):
        load_original_state_dict(checkpoint)
    with pytest.raises(FileNotFoundError):
        load_original_state_dict(tmp_path / "absent.pth")


def test_from_pretrained_converts_a_folder_in_the_authors_hub_layout(tmp_path, pvt_state_dict, pvt_reference_logits):
    repo = tmp_path / "ZhengPeng7--BiRefNet_lite"
    repo.mkdir()
    (repo / "config.json").write_text(json.dumps({
        "architectures": ["BiRefNet"],
        "auto_map": {"AutoConfig": "BiRefNet_config.BiRefNetConfig", "AutoModelForImageSegmentation": "birefnet.BiRefNet"},
        "bb_pretrained": False,
    }))
    save_file({k: v.contiguous() for k, v in pvt_state_dict.items()}, str(repo / "model.safetensors"))
    model = BiRefNetForImageSegmentation.from_pretrained(repo)
    assert not model.training and model.config.backbone == "pvt_v2_b0"
    x, expected = pvt_reference_logits
    with torch.no_grad():
        assert torch.equal(model(x).logits, expected)
    half = BiRefNetForImageSegmentation.from_pretrained(repo, dtype=torch.bfloat16)
    assert half.reconstruction.head.weight.dtype == torch.bfloat16


# ------------------------------------------------------------------------------ the mapping module (issue 17)
def test_conversion_mapping_imports_neither_the_model_nor_the_converter(tmp_path):
    """The import graph has no cycle: the mapping module needs only the configuration, the model needs the mapping
    and never the converter. Checked in a fresh process, with the package's own ``__init__`` left out (it imports
    everything), and in the sources, for imports inside functions too."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    import birefnet_hf

    package = Path(birefnet_hf.__file__).parent
    script = (
        "import sys, types\n"
        "package = types.ModuleType('birefnet_hf')\n"
        f"package.__path__ = [{str(package)!r}]\n"
        "sys.modules['birefnet_hf'] = package\n"
        "import birefnet_hf.conversion_mapping\n"
        "after_mapping = sorted(m for m in sys.modules if m.startswith('birefnet_hf.'))\n"
        "import birefnet_hf.modeling_birefnet\n"
        "after_model = sorted(m for m in sys.modules if m.startswith('birefnet_hf.'))\n"
        "print(after_mapping)\n"
        "print(after_model)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    after_mapping, after_model = (line.strip() for line in result.stdout.strip().splitlines()[-2:])
    assert after_mapping == "['birefnet_hf.configuration_birefnet', 'birefnet_hf.conversion_mapping']"
    assert "birefnet_hf.modeling_birefnet" in after_model and "convert_birefnet" not in after_model

    def imported_modules(path: Path) -> set[str]:
        modules = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                modules.add("." * node.level + (node.module or ""))
            elif isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
        return modules

    assert not any("convert_birefnet" in m for m in imported_modules(package / "modeling_birefnet.py"))
    ours = {m for m in imported_modules(package / "conversion_mapping.py") if m.startswith(".")}
    assert ours == {".configuration_birefnet", ".backbones_dinov3", ".backbones_torchvision"}
    for helper in (".backbones_dinov3", ".backbones_torchvision"):  # the backbone-spec helpers it reads
        assert not any("modeling" in m or "convert" in m for m in imported_modules(package / f"{helper[1:]}.py"))


@pytest.mark.parametrize("backbone", sorted(path.stem for path in (FIXTURES / "keys").glob("*.json")))
def test_transformers_applies_the_key_mapping_like_the_converter(backbone):
    """``original_key_mapping`` is what ``from_pretrained`` hands to transformers (``key_mapping``): transformers'
    own renaming gives every key of the authors' manifest the converter's name, also under DDP / compile
    prefixes."""
    from transformers.core_model_loading import WeightRenaming, apply_renamings

    from birefnet_hf.conversion_mapping import original_key_mapping, rename_original_key

    renamings = [WeightRenaming(pattern, target) for pattern, target in original_key_mapping(backbone).items()]
    renamed = 0
    for key, _, _ in official_manifest(backbone):
        ours = rename_original_key(key, backbone)
        if ours is None:  # a buffer the model computes
            continue
        assert ours.startswith(("localization.", "reconstruction."))
        assert apply_renamings(key, renamings) == ours, key
        assert apply_renamings(f"module._orig_mod.{key}", renamings) == ours, key
        renamed += 1
    assert renamed > 100
    with pytest.raises(KeyError, match="decoder.mystery.weight"):
        rename_original_key("decoder.mystery.weight", backbone)


def test_old_import_paths_still_work():
    from birefnet_hf import conversion_mapping, convert_birefnet_original_to_hf, families

    for name in ("convert_state_dict", "infer_backbone", "infer_config_from_state_dict", "load_original_state_dict",
                 "rename_original_key", "strip_wrapper_prefixes", "unreadable_weights_error"):
        assert getattr(convert_birefnet_original_to_hf, name) is getattr(conversion_mapping, name)
    assert families.refuse_pre_2024_layout is conversion_mapping.refuse_pre_2024_layout


def test_header_shapes_give_the_same_config_without_reading_tensors(tmp_path, pvt_state_dict):
    from birefnet_hf.conversion_mapping import original_state_dict_on_meta

    path = tmp_path / "model.safetensors"
    save_file({f"module.{k}": v.contiguous() for k, v in pvt_state_dict.items()}, str(path))
    on_meta = original_state_dict_on_meta(path)
    assert set(on_meta) == set(pvt_state_dict) and all(t.is_meta for t in on_meta.values())
    assert infer_config_from_state_dict(on_meta).to_dict() == infer_config_from_state_dict(pvt_state_dict).to_dict()
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(OSError, match="truncated or corrupt") as excinfo:
        original_state_dict_on_meta(path)
    assert str(path) in str(excinfo.value)
