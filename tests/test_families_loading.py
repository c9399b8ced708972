# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Every route a user takes to a released family reaches its native input size without passing a size: a loaded
model (`family_of_model`, `pipeline("background-removal", model=model)`), `image_processor_for(model)`,
`birefnet_pipeline(task, ID)`, `birefnet-hf segment --model FOLDER`; and what transformers itself does with the
authors' layout (pinned here, so a change in transformers shows up)."""

from __future__ import annotations

import json
import os

import numpy as np
import PIL.Image
import pytest
import torch
from test_families import AUTHORS_CONFIG, EXPECTED_SIZES, _authors_repo
from transformers import AutoConfig, AutoImageProcessor, pipeline

from birefnet_hf import (
    BiRefNetForImageSegmentation,
    BiRefNetImageProcessor,
    BiRefNetImageProcessorPil,
    segment,
)
from birefnet_hf.families import (
    FAMILIES,
    family_config,
    family_of_model,
    image_processor_for,
    native_image_processor,
)
from birefnet_hf.pipelines import BackgroundRemovalPipeline, birefnet_pipeline

#: The families of the issue's routing question: 2048 (HR), 1440x2560 (lite-2K), 512, dynamic.
ROUTED = ("BiRefNet_HR", "BiRefNet_lite-2K", "BiRefNet_512x512", "BiRefNet_dynamic")


def _size(processor) -> dict:
    return {k: v for k, v in dict(processor.size).items() if v is not None}


@pytest.fixture(scope="module")
def lite_2k_folder(tmp_path_factory):
    """A folder standing in for ZhengPeng7/BiRefNet_lite-2K in the authors' layout (Swin-T: the cheapest family)."""
    return _authors_repo(tmp_path_factory.mktemp("hub"), "BiRefNet_lite-2K")


@pytest.fixture(scope="module")
def lite_2k_model(lite_2k_folder):
    return BiRefNetForImageSegmentation.from_pretrained(lite_2k_folder).eval()


# ------------------------------------------------------------------------------------ what transformers does
def test_transformers_refuses_the_authors_layout_before_any_hook(tmp_path):
    """The facts behind the entry points: AutoConfig (and so AutoModel and pipeline(model=ID)) refuses the
    authors' config.json (auto_map to remote code, no model_type) unless trust_remote_code runs their code;
    AutoImageProcessor finds no preprocessor_config.json."""
    folder = tmp_path / "ZhengPeng7" / "BiRefNet_HR"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(AUTHORS_CONFIG))
    with pytest.raises(ValueError, match="custom code"):
        AutoConfig.from_pretrained(folder, trust_remote_code=False)
    with pytest.raises(ValueError, match="custom code"):
        pipeline("background-removal", model=str(folder), trust_remote_code=False)
    with pytest.raises(OSError, match="preprocessor_config.json"):
        AutoImageProcessor.from_pretrained(folder)


def test_image_segmentation_pipeline_with_a_model_object_needs_a_processor(lite_2k_model):
    """transformers' own image-segmentation pipeline, given a model object, does not look at the model for a
    processor; image_processor_for(model) is what to pass."""
    with pytest.raises(Exception, match="Impossible to guess which image processor"):
        pipeline("image-segmentation", model=lite_2k_model)
    segmenter = pipeline("image-segmentation", model=lite_2k_model, image_processor=image_processor_for(lite_2k_model))
    assert _size(segmenter.image_processor) == {"height": 1440, "width": 2560}


# ------------------------------------------------------------------------------------ the model carries it
@pytest.mark.parametrize("name", ROUTED)
def test_a_config_loaded_from_a_family_gives_its_native_size(name, tmp_path):
    """transformers records the source in config.name_or_path (a Hub id, a folder, a Hub-cache snapshot)."""
    config = family_config(name)
    for source in (FAMILIES[name].hub_id, str(tmp_path / "ZhengPeng7" / name),
                   f"/cache/models--ZhengPeng7--{name}/snapshots/0123abc"):
        config.name_or_path = source
        assert family_of_model(config) is FAMILIES[name]
        assert _size(image_processor_for(config)) == EXPECTED_SIZES[name]
        assert isinstance(image_processor_for(config, backend="pil"), BiRefNetImageProcessorPil)


def test_a_model_named_like_a_family_with_another_backbone_is_not_taken_for_it(caplog):
    config = family_config("BiRefNet_HR")
    config.backbone = "pvt_v2_b0"
    config.name_or_path = "runs/BiRefNet_HR"
    with caplog.at_level("WARNING"):
        assert family_of_model(config) is None
    assert "backbone is pvt_v2_b0" in caplog.text
    assert image_processor_for(config) is None
    config.name_or_path = ""
    assert family_of_model(config) is None


def test_loading_the_authors_layout_keeps_the_source_so_the_pipeline_picks_the_size(lite_2k_folder, lite_2k_model):
    assert lite_2k_model.config.name_or_path == os.fspath(lite_2k_folder)
    assert family_of_model(lite_2k_model) is FAMILIES["BiRefNet_lite-2K"]
    remover = pipeline("background-removal", model=lite_2k_model)
    assert isinstance(remover, BackgroundRemovalPipeline)
    assert isinstance(remover.image_processor, BiRefNetImageProcessor)
    assert _size(remover.image_processor) == {"height": 1440, "width": 2560}
    # an explicit processor wins, and the converted model runs in the pipeline
    small = pipeline("background-removal", model=lite_2k_model, image_processor=image_processor_for(
        lite_2k_model, size={"height": 64, "width": 64}))
    result = small(PIL.Image.fromarray(np.full((40, 50, 3), 128, dtype=np.uint8)))
    assert result["matte"].size == (50, 40) and result["cutout"].mode == "RGBA"


def test_the_family_survives_save_pretrained_under_another_name(lite_2k_model, tmp_path):
    """A converted model records its family in config.released_family: a copy saved without a processor, in a
    folder that names no family, still gets the family's native size."""
    assert lite_2k_model.config.released_family == "BiRefNet_lite-2K"
    lite_2k_model.save_pretrained(tmp_path / "my_cutout_model")
    assert not (tmp_path / "my_cutout_model" / "preprocessor_config.json").exists()
    reloaded = BiRefNetForImageSegmentation.from_pretrained(tmp_path / "my_cutout_model")
    assert reloaded.config.released_family == "BiRefNet_lite-2K"
    assert family_of_model(reloaded) is FAMILIES["BiRefNet_lite-2K"]
    assert _size(image_processor_for(reloaded)) == {"height": 1440, "width": 2560}


# ------------------------------------------------------------------------------------ native_image_processor
def test_native_image_processor_prefers_the_saved_processor_then_the_family_then_1024(
    tiny_model_dir, tiny_model_dir_64, tmp_path, caplog
):
    with_processor = BiRefNetForImageSegmentation.from_pretrained(tiny_model_dir_64)
    assert _size(native_image_processor(with_processor)) == {"height": 64, "width": 64}
    assert _size(native_image_processor(tiny_model_dir_64, backend="pil")) == {"height": 64, "width": 64}
    without = BiRefNetForImageSegmentation.from_pretrained(tiny_model_dir)
    with caplog.at_level("WARNING"):
        processor = native_image_processor(without)
    assert _size(processor) == {"height": 1024, "width": 1024} and "1024x1024 default" in caplog.text
    remover = pipeline("background-removal", model=without)
    assert _size(remover.image_processor) == {"height": 1024, "width": 1024}
    # a family's converted folder without preprocessor_config.json: the family's size
    assert _size(native_image_processor(tmp_path / "ZhengPeng7" / "BiRefNet_512x512")) == {"height": 512, "width": 512}
    with pytest.raises(ValueError, match="backend"):
        native_image_processor(without, backend="cv2")


def test_a_broken_preprocessor_config_is_an_error_not_a_guess(tiny_model_dir, tmp_path):
    import shutil

    folder = tmp_path / "BiRefNet_HR"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "preprocessor_config.json").write_text("{not json")
    with pytest.raises((OSError, ValueError)):
        native_image_processor(folder)
    model = BiRefNetForImageSegmentation.from_pretrained(folder)
    with pytest.raises((OSError, ValueError)):
        pipeline("background-removal", model=model)


# ------------------------------------------------------------------------------------ our entry points
def test_birefnet_pipeline_from_an_authors_folder(lite_2k_folder):
    segmenter = birefnet_pipeline("image-segmentation", lite_2k_folder)
    assert segmenter.task == "image-segmentation"
    assert segmenter.model.config.backbone == "swin_v1_t"
    assert _size(segmenter.image_processor) == {"height": 1440, "width": 2560}
    remover = birefnet_pipeline(model=str(lite_2k_folder), model_kwargs={"dtype": torch.bfloat16})
    assert isinstance(remover, BackgroundRemovalPipeline) and remover.model.dtype == torch.bfloat16
    assert _size(remover.image_processor) == {"height": 1440, "width": 2560}
    with pytest.raises(ValueError, match="needs a model"):
        birefnet_pipeline("image-segmentation")
    with pytest.raises(TypeError, match="got int"):
        birefnet_pipeline("image-segmentation", 3)


def test_segment_command_uses_the_family_size_of_an_authors_folder(lite_2k_folder, tmp_path, monkeypatch):
    """`birefnet-hf segment --model FOLDER` hands the family's processor to every batch (the batches themselves
    are recorded here instead of run: a 1440x2560 forward pass is not a unit test on two cores)."""
    seen = []

    def record(jobs, outputs, model, processor, size, *args, **kwargs):
        seen.append((model.config.backbone, _size(processor), size))
        return 0

    monkeypatch.setattr(segment, "_process_batch", record)
    photo = tmp_path / "photo.png"
    PIL.Image.fromarray(np.zeros((20, 30, 3), dtype=np.uint8)).save(photo)
    segment.main([str(photo), "-m", str(lite_2k_folder), "-o", str(tmp_path / "out"), "--no-progress"])
    assert seen == [("swin_v1_t", {"height": 1440, "width": 2560}, None)]


@pytest.fixture(scope="module")
def swin_l_families(tmp_path_factory):
    """Authors'-layout folders for the Swin-L families HR, 512x512 and dynamic, sharing one weights file."""
    root = tmp_path_factory.mktemp("hub_swin_l")
    first = _authors_repo(root, "BiRefNet_HR")
    folders = {"BiRefNet_HR": first}
    for name in ("BiRefNet_512x512", "BiRefNet_dynamic"):
        folder = root / FAMILIES[name].hub_id
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps(AUTHORS_CONFIG))
        os.link(first / "model.safetensors", folder / "model.safetensors")
        folders[name] = folder
    return folders


@pytest.mark.slow
@pytest.mark.parametrize("name", ["BiRefNet_HR", "BiRefNet_512x512", "BiRefNet_dynamic"])
def test_swin_l_families_reach_their_size_through_every_route(name, swin_l_families):
    folder = swin_l_families[name]
    model = BiRefNetForImageSegmentation.from_pretrained(folder).eval()
    assert model.config.backbone == "swin_v1_l" and family_of_model(model) is FAMILIES[name]
    assert _size(pipeline("background-removal", model=model).image_processor) == EXPECTED_SIZES[name]
    assert _size(birefnet_pipeline("image-segmentation", folder).image_processor) == EXPECTED_SIZES[name]
    small = pipeline("image-segmentation", model=model, image_processor=image_processor_for(
        model, size={"height": 64, "width": 64}))
    masks = small(PIL.Image.fromarray(np.full((48, 40, 3), 200, dtype=np.uint8)))
    assert all(entry["mask"].size == (40, 48) for entry in masks)
