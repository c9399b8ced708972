# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Loading a broken model folder gives errors that name the file (and the field), never a bare library error
(issue 13, item 3): truncated or corrupt weights, a config.json that is not JSON, fields of the wrong type."""

from __future__ import annotations

import json
import shutil

import pytest
from transformers import AutoConfig, AutoModelForImageSegmentation

import birefnet_hf  # noqa: F401  (registers the Auto classes)
from birefnet_hf import BiRefNetConfig, BiRefNetForImageSegmentation
from birefnet_hf.configuration_birefnet import BiRefNetConfigFileError
from birefnet_hf.convert_birefnet_original_to_hf import load_original_state_dict

MODEL_LOADERS = [BiRefNetForImageSegmentation.from_pretrained, AutoModelForImageSegmentation.from_pretrained]
CONFIG_LOADERS = [BiRefNetConfig.from_pretrained, AutoConfig.from_pretrained]


@pytest.fixture()
def folder(tiny_model_dir, tmp_path):
    """A writable copy of the tiny saved model."""
    copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir, copy)
    return copy


def _edit_config(folder, **fields):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config.update(fields)
    path.write_text(json.dumps(config))
    return path


@pytest.mark.parametrize("load", MODEL_LOADERS, ids=["BiRefNet", "Auto"])
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_unreadable_weights_name_the_file(folder, load, damage):
    weights = folder / "model.safetensors"
    if damage == "truncated":  # an interrupted download or copy
        with open(weights, "r+b") as handle:
            handle.truncate(weights.stat().st_size // 2)
    else:
        weights.write_bytes(b"\x00" * 64)
    with pytest.raises(OSError, match="truncated or corrupt") as excinfo:
        load(folder)
    assert str(weights) in str(excinfo.value)


def test_unreadable_authors_checkpoint_names_the_file(tmp_path):
    path = tmp_path / "authors.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(OSError, match="truncated or corrupt") as excinfo:
        load_original_state_dict(path)
    assert str(path) in str(excinfo.value)


@pytest.mark.parametrize("load", MODEL_LOADERS + CONFIG_LOADERS, ids=["BiRefNet", "Auto", "Config", "AutoConfig"])
@pytest.mark.parametrize("content", ['{"model_type": "birefnet", ', "[1, 2]"], ids=["not-json", "not-an-object"])
def test_config_that_is_not_a_json_object_names_the_file(folder, load, content):
    (folder / "config.json").write_text(content)
    with pytest.raises((OSError, ValueError)) as excinfo:
        load(folder)
    message = str(excinfo.value)
    assert "config.json" in message and str(folder) in message


@pytest.mark.parametrize("load", MODEL_LOADERS + CONFIG_LOADERS, ids=["BiRefNet", "Auto", "Config", "AutoConfig"])
@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("squeeze_block_count", "two", "an integer"),
        ("context_feature_fusion_levels", 1.5, "an integer"),
        ("inward_reference", "yes", "true or false"),
        ("deformable_kernel_sizes", "137", "a list of integers"),
        ("loss_iou_weight", None, "a number"),
        ("backbone", 7, "a string"),
    ],
)
def test_field_of_the_wrong_type_names_the_file_and_the_field(folder, load, field, value, expected):
    path = _edit_config(folder, **{field: value})
    with pytest.raises(BiRefNetConfigFileError) as excinfo:
        load(folder)
    message = str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)
    assert str(path) in message and f"`{field}`" in message and expected in message


def test_field_types_are_checked_in_python_too():
    with pytest.raises(ValueError, match=r"`squeeze_block_count` must be an integer, got 'two' \(str\)"):
        BiRefNetConfig(backbone="pvt_v2_b0", squeeze_block_count="two")
    with pytest.raises(ValueError, match="`use_batch_norm` must be true or false"):
        BiRefNetConfig(backbone="pvt_v2_b0", use_batch_norm="no")
    # the accepted spellings: JSON integers for float fields, NumPy scalars
    import numpy as np

    config = BiRefNetConfig(
        backbone="pvt_v2_b0", loss_bce_weight=30, squeeze_block_count=np.int64(1), use_batch_norm=np.bool_(True)
    )
    assert config.loss_bce_weight == 30
    assert type(config.squeeze_block_count) is int and config.use_batch_norm is True
    assert json.loads(config.to_json_string())["squeeze_block_count"] == 1
