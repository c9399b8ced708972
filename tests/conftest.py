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
