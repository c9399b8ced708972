# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def tiny_config():
    """The smallest published architecture (PVT-v2-b0 backbone, every BiRefNet component on)."""
    from birefnet_hf import BiRefNetConfig

    return BiRefNetConfig(backbone="pvt_v2_b0")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_config):
    """A randomly initialised pvt_v2_b0 BiRefNet saved with save_pretrained (model only)."""
    from birefnet_hf import BiRefNetForImageSegmentation

    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(tiny_config).eval()
    path = tmp_path_factory.mktemp("tiny_birefnet")
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir_64(tmp_path_factory, tiny_model_dir):
    """`tiny_model_dir` with a 64x64 image processor saved next to it (fast inference in command and server tests)."""
    import shutil

    from birefnet_hf import BiRefNetImageProcessor

    path = tmp_path_factory.mktemp("tiny_birefnet_64")
    shutil.copytree(tiny_model_dir, path, dirs_exist_ok=True)
    BiRefNetImageProcessor(size={"height": 64, "width": 64}).save_pretrained(path)
    return path
