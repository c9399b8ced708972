# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""torchvision CNN backbones of BiRefNet's localization module: ``vgg16``, ``vgg16bn`` and ``resnet50``.

The authors cut torchvision's networks into four stages named ``conv1`` .. ``conv4`` (strides 4, 8, 16, 32):

* VGG-16 (with or without BatchNorm): consecutive slices of ``features`` (``BACKBONE_SPECS[...]["stage_slices"]``),
  each ending with a max-pool except the first stage, which holds two of them; widths 128, 256, 512, 512.
* ResNet-50: the stem (conv, BN, ReLU, max-pool) followed by ``layer1`` as ``conv1``, then ``layer2`` .. ``layer4``;
  widths 256, 512, 1024, 2048.

The stages keep torchvision's module indices inside them, so the state-dict keys are the authors' (``bb.conv1.0.weight``
-> ``localization.backbone.conv1.0.weight``) and their checkpoints load without renaming.
"""

from __future__ import annotations

import torch
from torch import nn

from .configuration_birefnet import BACKBONE_SPECS, BiRefNetConfig


def _torchvision_model(name: str, pretrained: bool) -> nn.Module:
    from torchvision import models  # imported lazily: only needed when such a backbone is built

    builder = getattr(models, name)
    weights = models.get_model_weights(builder).DEFAULT if pretrained else None
    return builder(weights=weights)


class TorchvisionBackbone(nn.Module):
    """A torchvision VGG-16 / ResNet-50 as the authors' four-stage pyramid ``conv1`` .. ``conv4``."""

    def __init__(self, config: BiRefNetConfig):
        super().__init__()
        spec = BACKBONE_SPECS[config.backbone]
        network = _torchvision_model(spec["torchvision_name"], config.use_pretrained_backbone)
        if "stage_slices" in spec:  # VGG: slices of ``features``, torchvision's indices kept inside each stage
            stages = [network.features[start:stop] for start, stop in spec["stage_slices"]]
        else:  # ResNet: stem + layer1, layer2, layer3, layer4
            stem = nn.Sequential(network.conv1, network.bn1, network.relu, network.maxpool, network.layer1)
            stages = [stem, network.layer2, network.layer3, network.layer4]
        self.conv1, self.conv2, self.conv3, self.conv4 = stages
        self.gradient_checkpointing = False

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        features = []
        x = pixel_values
        for stage in (self.conv1, self.conv2, self.conv3, self.conv4):
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                from torch.utils.checkpoint import checkpoint

                x = checkpoint(stage, x, use_reentrant=False)
            else:
                x = stage(x)
            features.append(x)
        return features


def infer_torchvision_backbone(state_dict) -> str | None:
    """``vgg16`` / ``vgg16bn`` / ``resnet50`` when an authors' state dict holds that backbone (``bb.conv1..conv4``),
    from its tensor shapes; else ``None``."""
    stem = state_dict.get("bb.conv1.0.weight")
    if stem is None or "bb.conv4.0.weight" not in state_dict and not any(k.startswith("bb.conv4.") for k in state_dict):
        return None
    if tuple(stem.shape) == (64, 3, 7, 7):
        return "resnet50"
    if tuple(stem.shape) == (64, 3, 3, 3):
        return "vgg16bn" if "bb.conv1.1.running_mean" in state_dict else "vgg16"
    return None


__all__ = ["TorchvisionBackbone", "infer_torchvision_backbone"]
