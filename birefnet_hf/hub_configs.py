# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The per-size files that ``birefnet-hf publish`` puts on the Hub, generated from code.

For each published backbone size (:data:`HUB_SIZES`), each further backbone the authors' code supports
(:data:`EXTRA_SIZES`: ``vgg16``, ``vgg16bn``, ``resnet50``, ``dino_v3_*``) and each released family
(``hub_configs/families/<name>/``, see below) the package's ``hub_configs/<size>/`` folder holds (``hub_configs/``
is :data:`HUB_CONFIGS_DIR`, ``birefnet_hf/hub_configs_data/``: package data, so it ships inside the wheel)

* ``config.json``: ``BiRefNetConfig(backbone=size)`` as ``save_pretrained`` writes it (``architectures`` set), minus
  the ``transformers_version`` stamp (``save_pretrained`` adds the installed version when a model folder is built);
* ``preprocessor_config.json``: the default [`BiRefNetImageProcessor`] (1024x1024, ImageNet normalisation);
* ``card.yaml``: the facts of the model card (title, description, backbone, parameter count and MACs at 1024x1024
  *measured here*, training data, intended use, limitations, licence, citation, and the numbers the paper reports for
  this size, labelled as quotes).

The folder is (re)written with::

    python -m birefnet_hf.hub_configs                 # or: birefnet-hf publish --write-hub-configs DIR
    python -m birefnet_hf.hub_configs --check         # exit 1 if the files drifted from the code
    python -m birefnet_hf.hub_configs --output-dir DIR   # elsewhere than the package's folder

A released family's folder (:func:`render_family_config_files`, from :mod:`birefnet_hf.families`) holds the
family's ``config.json`` (its backbone and the switches its checkpoint implies), ``preprocessor_config.json`` at its
native size (2048x2048 for ``BiRefNet_HR``, 1440x2560 for ``BiRefNet_lite-2K``, ``{"longest_edge": 2304}`` for
``BiRefNet_dynamic``'s size rule, ...) and ``card.yaml`` with the family's facts: use, licence (RMBG-2.0: CC BY-NC 4.0,
gated), native size, parameters and MACs *at that size* (for the dynamic family: a square image at the longest edge
the rule produces), and the authors' published figures labelled as quotes. ``birefnet-hf publish --family NAME``
builds a converted repository from them.

``tests/test_hub_configs.py`` checks that the committed files are exactly what this module produces.

How the numbers are measured (:func:`count_parameters`, :func:`count_macs`, :class:`MetaMeasurements`): the model is
built on PyTorch's ``meta`` device (shapes only, no memory, no arithmetic; also the 6.7 B-parameter ``dino_v3_7b``)
and run once in inference mode on a 1x3x1024x1024 input (a family's native size for its folder) under
:class:`torch.utils.flop_counter.FlopCounterMode`. PyTorch counts convolutions and matrix products (linear layers,
attention, the weight product of the deformable convolutions) at 2 FLOPs per multiply-accumulate; the bilinear sampling
of the deformable convolutions (``grid_sample`` on GPU and meta, ``embedding_bag`` on CPU, which have no formula in
PyTorch) is added here at 4 multiply-accumulates per sampled value (one per bilinear corner), whichever sampler runs. On the meta device scaled-dot-product attention runs as its two matrix
products, which are counted (on CPU tensors PyTorch's fused attention kernel has no formula and would be missed).
Normalisation, activations, softmax, resizing and other element-wise work are not counted. MACs = counted FLOPs / 2.
The count is of the inference forward that runs on a GPU (the meta device takes the same portable path, see
:mod:`birefnet_hf.inference_paths`): the full-resolution head runs in the cheaper order of
:meth:`ReconstructionModule._full_resolution_head` (the same function with fewer MACs than the literal
upsample-concatenate-convolve order), and Swin's q/k/v projection includes the padding slots of its windows, as in
the authors' code (the CPU inference block skips them: ``window_attention.cpu_inference_block``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml
from transformers.utils import logging

from .atomic_io import write_text
from .configuration_birefnet import BACKBONE_SPECS, BiRefNetConfig

logger = logging.get_logger(__name__)

#: The backbone sizes published to the Hub, smallest family member first.
HUB_SIZES: tuple[str, ...] = (
    "swin_v1_t",
    "swin_v1_s",
    "swin_v1_b",
    "swin_v1_l",
    "pvt_v2_b0",
    "pvt_v2_b1",
    "pvt_v2_b2",
    "pvt_v2_b5",
)

#: The other backbones of the authors' code (torchvision CNNs and DINOv3 ViTs): ``hub_configs/<size>/`` entries with
#: measured parameters and MACs (``dino_v3_7b`` on the meta device only), publishable with ``--only`` but not by
#: default (no trained weights of the authors use them yet).
EXTRA_SIZES: tuple[str, ...] = (
    "vgg16",
    "vgg16bn",
    "resnet50",
    "dino_v3_s",
    "dino_v3_s_plus",
    "dino_v3_b",
    "dino_v3_l",
    "dino_v3_h_plus",
    "dino_v3_7b",
)

#: Every backbone size with a ``hub_configs/<size>/`` folder.
ALL_SIZES: tuple[str, ...] = HUB_SIZES + EXTRA_SIZES

#: The generated folders, shipped inside the package (package data, so that ``birefnet-hf publish`` works from an
#: installed wheel): ``birefnet_hf/hub_configs_data/<size>/`` and ``birefnet_hf/hub_configs_data/families/<name>/``.
HUB_CONFIGS_DIR: Path = Path(__file__).resolve().parent / "hub_configs_data"

#: Sub-folder of ``hub_configs/`` holding one folder per released family (:data:`birefnet_hf.families.FAMILIES`).
FAMILIES_FOLDER = "families"

#: Files of one ``hub_configs/<size>/`` folder.
HUB_CONFIG_FILES: tuple[str, ...] = ("config.json", "preprocessor_config.json", "card.yaml")

#: Resolution of the published models (paper Sec. 4.1: trained and tested at 1024x1024), and of the MAC count.
RESOLUTION: tuple[int, int] = (1024, 1024)

ARCHITECTURES = ["BiRefNetForImageSegmentation"]

PAPER = {
    "title": "Bilateral Reference for High-Resolution Dichotomous Image Segmentation",
    "authors": [
        "Peng Zheng",
        "Dehong Gao",
        "Deng-Ping Fan",
        "Li Liu",
        "Jorma Laaksonen",
        "Wanli Ouyang",
        "Nicu Sebe",
    ],
    "venue": "CAAI Artificial Intelligence Research",
    "year": 2024,
    "code": "https://github.com/ZhengPeng7/BiRefNet",
}

CITATION = """@article{zheng2024birefnet,
  title   = {Bilateral Reference for High-Resolution Dichotomous Image Segmentation},
  author  = {Zheng, Peng and Gao, Dehong and Fan, Deng-Ping and Liu, Li and Laaksonen, Jorma and Ouyang, Wanli and Sebe, Nicu},
  journal = {CAAI Artificial Intelligence Research},
  year    = {2024}
}
"""

#: Human-readable backbone names.
_BACKBONE_NAMES = {
    "swin_v1_t": "Swin-T",
    "swin_v1_s": "Swin-S",
    "swin_v1_b": "Swin-B",
    "swin_v1_l": "Swin-L",
    "pvt_v2_b0": "PVT-v2-B0",
    "pvt_v2_b1": "PVT-v2-B1",
    "pvt_v2_b2": "PVT-v2-B2",
    "pvt_v2_b5": "PVT-v2-B5",
    "vgg16": "VGG-16",
    "vgg16bn": "VGG-16-BN",
    "resnet50": "ResNet-50",
    "dino_v3_s": "DINOv3 ViT-S/16",
    "dino_v3_s_plus": "DINOv3 ViT-S+/16",
    "dino_v3_b": "DINOv3 ViT-B/16",
    "dino_v3_l": "DINOv3 ViT-L/16",
    "dino_v3_h_plus": "DINOv3 ViT-H+/16",
    "dino_v3_7b": "DINOv3 ViT-7B/16",
}

_FAMILY_NAMES = {
    "swin": "Swin Transformer v1 (Liu et al., ICCV 2021)",
    "pvt_v2": "Pyramid Vision Transformer v2 (Wang et al., CVMJ 2022)",
    "dinov3": "DINOv3 (Simeoni et al., 2025), a self-supervised Vision Transformer",
    "vgg16": "VGG (Simonyan and Zisserman, ICLR 2015), torchvision's implementation",
    "vgg16bn": "VGG with BatchNorm (Simonyan and Zisserman, ICLR 2015), torchvision's implementation",
    "resnet50": "ResNet (He et al., CVPR 2016), torchvision's implementation",
}

_PRETRAINING = {
    "ms_in22k_ft_in1k": "ImageNet-22k, fine-tuned on ImageNet-1k",
    "in1k": "ImageNet-1k",
    "lvd1689m": "LVD-1689M (1.7 B web images, self-supervised)",
}

#: What the card says about how a backbone is used, beyond the common description.
_BACKBONE_NOTES = {
    "dinov3": (
        " The DINOv3 backbone is frozen during training, as in the authors' code; its single-stride (16) features of "
        "four blocks go through the authors' pyramid neck, which resizes them to strides 4-32 and maps them to "
        "Swin-L's widths."
    ),
    "torchvision": " The backbone is the authors' four-stage cut (conv1..conv4, strides 4-32) of torchvision's network.",
}

#: Table 7 of the paper ("Comparison of different DIS methods on the performance, efficiency, and model complexity"),
#: quoted verbatim for the sizes it lists. Measured by the authors on their own weights (runtime on one A100 GPU);
#: the DIS-TEs columns are HCE and weighted F-measure over DIS-TE1..4. Never used for the model-index.
PAPER_TABLE_7: dict[str, dict[str, Any]] = {
    "swin_v1_l": {
        "model": "BiRefNet_SwinL",
        "runtime_ms": 83.3,
        "params_m": 215,
        "macs_g": 1143,
        "dis_te_hce": 916,
        "dis_te_wfm": 0.858,
    },
    "swin_v1_b": {
        "model": "BiRefNet_SwinB",
        "runtime_ms": 61.4,
        "params_m": 101,
        "macs_g": 561,
        "dis_te_hce": 954,
        "dis_te_wfm": 0.855,
    },
    "swin_v1_t": {
        "model": "BiRefNet_SwinT",
        "runtime_ms": 40.9,
        "params_m": 39,
        "macs_g": 231,
        "dis_te_hce": 980,
        "dis_te_wfm": 0.822,
    },
    "pvt_v2_b2": {
        "model": "BiRefNet_PVT_v2b2",
        "runtime_ms": 47.8,
        "params_m": 35,
        "macs_g": 195,
        "dis_te_hce": 969,
        "dis_te_wfm": 0.838,
    },
    "pvt_v2_b1": {
        "model": "BiRefNet_PVT_v2b1",
        "runtime_ms": 36.6,
        "params_m": 23,
        "macs_g": 147,
        "dis_te_hce": 978,
        "dis_te_wfm": 0.817,
    },
    "pvt_v2_b0": {
        "model": "BiRefNet_PVT_v2b0",
        "runtime_ms": 32.9,
        "params_m": 11,
        "macs_g": 89,
        "dis_te_hce": 1013,
        "dis_te_wfm": 0.806,
    },
}

MACS_COUNTING_NOTE = (
    "Counted with torch.utils.flop_counter.FlopCounterMode on the meta device, one 1x3x1024x1024 image, inference "
    "mode: convolutions and matrix products (linear layers, attention products, the weight product of the "
    "deformable convolutions) at 1 MAC per multiply-accumulate, plus the bilinear sampling of the deformable "
    "convolutions (grid_sample) at 4 MACs per sampled value. Normalisation, activations, softmax, resizing and "
    "element-wise work are not counted."
)

TRAINING_DATA = {
    "dataset": "DIS5K",
    "split": "DIS-TR",
    "description": (
        "DIS5K (Qin et al., ECCV 2022): high-resolution images with pixel-accurate binary masks of a single "
        "foreground object each. Training split DIS-TR (3,000 images, 219 classes); validation DIS-VD (470 images); "
        "test sets DIS-TE1..DIS-TE4 (500 images each, increasing shape complexity)."
    ),
    "recipe": (
        "The paper's protocol: images and masks resized to 1024x1024, horizontal flip as the only augmentation, "
        "Adam with learning rate 1e-4, 600 epochs with the last 20 fine-tuned with the IoU loss only (region-level "
        "fine-tuning), loss 30 BCE + 0.5 IoU + 10 SSIM on the output and every side output, plus the outward "
        "reference's gradient loss."
    ),
}

INTENDED_USE = (
    "Dichotomous image segmentation: a binary foreground/background mask (or a soft matte) of the salient object(s) "
    "in a photo, with fine structures such as hair, wires, lattices and thin branches. Typical uses are background "
    "removal and cut-outs, and as a segmentation stage in image-editing and generation pipelines. Works on any "
    "resolution; images are resized to 1024x1024 for the model and the mask is resized back."
)

LIMITATIONS = [
    "Class-agnostic, made for DIS5K-style images with one dominant foreground: scenes with several unrelated objects, "
    "or where the 'foreground' is ambiguous, give unpredictable masks.",
    "Images are processed at 1024x1024: structures thinner than about one pixel at that scale are lost, and strongly "
    "non-square images are distorted by the resize (use the processor's size={'longest_edge': L} to keep the aspect "
    "ratio, at a cost in accuracy outside the training distribution).",
    "Transparent, reflective and camouflaged objects, and low-contrast boundaries, are the typical failure cases.",
    "Not evaluated for fairness across people; do not use it to make decisions about people.",
]


# ------------------------------------------------------------------------------------------------ measurements
def _build_on_meta(config: BiRefNetConfig):
    from .modeling_birefnet import build_on_meta_device

    return build_on_meta_device(config)


def count_parameters(config: BiRefNetConfig) -> int:
    """Number of parameters of ``BiRefNetForImageSegmentation(config)``, counted on the meta device (no memory)."""
    return sum(parameter.numel() for parameter in _build_on_meta(config).parameters())


def _grid_sample_flops(input_shape, grid_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of a bilinear ``grid_sample``: 4 multiply-accumulates (one per corner) per output value, 2 FLOPs each."""
    batch, channels = input_shape[0], input_shape[1]
    samples = 1
    for side in grid_shape[1:-1]:
        samples *= side
    return 2 * 4 * batch * channels * samples


def _embedding_bag_flops(weight_shape, indices_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of a weighted-sum ``embedding_bag`` (the CPU sampler of the deformable convolution, four corner rows
    per sampled value): one multiply-accumulate per gathered element."""
    gathered = 1
    for side in indices_shape:
        gathered *= side
    return 2 * gathered * weight_shape[1]


def _onednn_convolution_flops(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of ``torch.mkldnn_convolution`` (the CPU inference products of ``cpu_linear.linear_rows``), counted as
    PyTorch counts ``convolution``."""
    from torch.utils.flop_counter import conv_flop_count

    return conv_flop_count(x_shape, w_shape, out_shape)


#: FLOP formulas added to PyTorch's: the deformable convolution's bilinear sampling, whichever sampler runs
#: (``grid_sample`` on GPU and the meta device, ``embedding_bag`` on CPU): 4 MACs per sampled value either way; and
#: oneDNN's convolution, which the CPU inference paths call directly (see ``cpu_linear``).
EXTRA_FLOP_FORMULAS = {
    torch.ops.aten.mkldnn_convolution: _onednn_convolution_flops,
    torch.ops.aten.grid_sampler_2d: _grid_sample_flops,
    torch.ops.aten._embedding_bag: _embedding_bag_flops,
    torch.ops.aten._embedding_bag_forward_only: _embedding_bag_flops,
}


def flop_counter():
    """A ``FlopCounterMode`` that also counts the deformable convolutions' bilinear sampling and the direct oneDNN
    convolutions of the CPU inference paths."""
    from torch.utils.flop_counter import FlopCounterMode

    return FlopCounterMode(display=False, custom_mapping=dict(EXTRA_FLOP_FORMULAS))


def count_macs(config: BiRefNetConfig, resolution: Sequence[int] = RESOLUTION, model=None) -> int:
    """Multiply-accumulates of one inference forward pass at ``resolution`` (height, width); see the module docstring
    for what is counted. ``model``: an already built ``BiRefNetForImageSegmentation(config)`` (any device)."""
    model = _build_on_meta(config) if model is None else model.eval()
    device = next(model.parameters()).device
    pixel_values = torch.zeros(1, 3, int(resolution[0]), int(resolution[1]), device=device)
    counter = flop_counter()
    with counter, torch.no_grad():
        model(pixel_values)
    flops = counter.get_total_flops()
    if flops % 2:
        raise RuntimeError(
            f"odd FLOP count {flops} for {config.backbone}: not a sum of multiply-accumulates."
        )
    return flops // 2


#: Measures ``(parameters, MACs)`` of a configuration at a (height, width) resolution.
Measure = Callable[[BiRefNetConfig, Sequence[int]], tuple[int, int]]


def _architecture_key(config: BiRefNetConfig) -> str:
    """The configuration without the fields that do not change the forward pass (loss weights, labels, names)."""
    data = config.to_dict()
    for name in list(data):
        if name.startswith("loss_") or name in ("architectures", "transformers_version", "id2label", "label2id"):
            data.pop(name)
    return json.dumps(data, sort_keys=True, default=str)


class MetaMeasurements:
    """Parameter and MAC counts on the meta device (:func:`count_parameters`, :func:`count_macs`), each model built
    once and each (architecture, resolution) counted once: many families share a backbone and a size (eleven are
    Swin-L at 1024x1024, differing only in loss weights), so one generation run measures each distinct model once.
    """

    def __init__(self) -> None:
        self._models: dict[str, Any] = {}
        self._counts: dict[tuple[str, tuple[int, int]], tuple[int, int]] = {}

    def __call__(self, config: BiRefNetConfig, resolution: Sequence[int]) -> tuple[int, int]:
        key = _architecture_key(config)
        resolution = (int(resolution[0]), int(resolution[1]))
        if (key, resolution) not in self._counts:
            if key not in self._models:
                self._models[key] = _build_on_meta(config)
            model = self._models[key]
            parameters = sum(parameter.numel() for parameter in model.parameters())
            self._counts[key, resolution] = (parameters, count_macs(config, resolution, model=model))
        return self._counts[key, resolution]


def macs_counting_note(resolution: Sequence[int] = RESOLUTION) -> str:
    """How the MACs of a card were counted, for an input of ``resolution`` (height, width)."""
    if tuple(resolution) == tuple(RESOLUTION):
        return MACS_COUNTING_NOTE
    return MACS_COUNTING_NOTE.replace("1x3x1024x1024", f"1x3x{int(resolution[0])}x{int(resolution[1])}")


# --------------------------------------------------------------------------------------------------- contents
def hub_config(size: str) -> BiRefNetConfig:
    """The published configuration of ``size``."""
    _check_size(size)
    config = BiRefNetConfig(backbone=size)
    config.architectures = list(ARCHITECTURES)
    return config


def config_json(config: BiRefNetConfig) -> str:
    """``config.json`` text as ``save_pretrained`` writes it, without the ``transformers_version`` stamp; the
    backbone is always written (it is the default for ``swin_v1_l``, which the diff would drop)."""
    data = json.loads(config.to_json_string(use_diff=True))
    data.pop("transformers_version", None)
    data["backbone"] = config.backbone
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def preprocessor_config_json(size: dict[str, int] | None = None) -> str:
    """``preprocessor_config.json`` text of the default BiRefNet image processor (with ``size``, at that size)."""
    from .image_processing_birefnet import BiRefNetImageProcessor

    return (BiRefNetImageProcessor() if size is None else BiRefNetImageProcessor(size=dict(size))).to_json_string()


def _torchvision_pretraining(builder_name: str) -> str:
    """The ImageNet weights the authors' code (and ``use_pretrained_backbone``) takes: torchvision's ``DEFAULT``."""
    from torchvision import models

    weights = models.get_model_weights(getattr(models, builder_name)).DEFAULT
    return f"ImageNet-1k (torchvision weights {weights.name})"


def backbone_facts(size: str) -> dict[str, Any]:
    spec = BACKBONE_SPECS[size]
    if spec["family"] == "torchvision":
        return {
            "name": _BACKBONE_NAMES[size],
            "family": _FAMILY_NAMES[size],
            "torchvision_name": spec["torchvision_name"],
            "pretraining": _torchvision_pretraining(spec["torchvision_name"]),
            "channels": list(spec["channels"]),
        }
    tag = spec["timm_name"].split(".", 1)[1]
    facts = {
        "name": _BACKBONE_NAMES[size],
        "family": _FAMILY_NAMES[spec["family"]],
        "timm_name": spec["timm_name"],
        "pretraining": _PRETRAINING.get(tag, tag),
        "channels": list(spec["channels"]),
    }
    if spec["family"] == "dinov3":
        from .configuration_birefnet import PYRAMID_NECK_CHANNELS

        facts["out_indices"] = list(spec["out_indices"])
        facts["pyramid_neck_channels"] = list(PYRAMID_NECK_CHANNELS)
        facts["frozen"] = True
    return facts


def backbone_library_name(backbone: dict[str, Any]) -> str:
    """``timm `name``` or ``torchvision `name``` of a card's backbone facts."""
    if "torchvision_name" in backbone:
        return f"torchvision `{backbone['torchvision_name']}`"
    return f"timm `{backbone['timm_name']}`"


def _architecture_description(backbone: dict[str, Any], size: str) -> str:
    return (
        f"BiRefNet with a {backbone['name']} backbone ({backbone['family']}, pre-trained on "
        f"{backbone['pretraining']}) for high-resolution dichotomous image segmentation: one foreground "
        "probability per pixel. The localization module (backbone with image-pyramid input, context feature "
        "fusion and a squeeze block) finds the object; the reconstruction module (reconstruction blocks with "
        "deformable convolutions) recovers its fine structure with the bilateral reference: patches of the "
        "full-resolution image fed to every decoder stage (inward reference) and gradient-aware attention "
        "(outward reference)." + _BACKBONE_NOTES.get(BACKBONE_SPECS[size]["family"], "")
    )


def card_facts(size: str, measure: Measure | None = None) -> dict[str, Any]:
    """The model-card facts of ``size`` (the content of ``card.yaml``), measuring parameters and MACs with
    ``measure`` (default: a fresh :class:`MetaMeasurements`)."""
    config = hub_config(size)
    backbone = backbone_facts(size)
    parameters, macs = (measure or MetaMeasurements())(config, RESOLUTION)
    facts: dict[str, Any] = {
        "size": size,
        "title": f"BiRefNet ({backbone['name']})",
        "description": _architecture_description(backbone, size),
        "backbone": backbone,
        "parameters": parameters,
        "macs": {"resolution": list(RESOLUTION), "value": macs, "counted": MACS_COUNTING_NOTE},
        "input_resolution": list(RESOLUTION),
        "training_data": dict(TRAINING_DATA),
        "intended_use": INTENDED_USE,
        "limitations": list(LIMITATIONS),
        "license": "mit",
        "license_note": "MIT, the licence of the authors' code and released weights (https://github.com/ZhengPeng7/BiRefNet).",
        "paper": dict(PAPER),
        "citation": CITATION,
    }
    if size in PAPER_TABLE_7:
        facts["reported_in_paper"] = {
            "source": "Table 7 of the paper (authors' weights; runtime on one NVIDIA A100; DIS-TEs = DIS-TE1..4)",
            **PAPER_TABLE_7[size],
        }
    return facts


#: Intended use of a family, by its ``use``.
_FAMILY_USES = {
    "general": (
        "General-use foreground segmentation: background removal and cut-outs of everyday photos (objects, people, "
        "animals, products), with fine structures such as hair, wires and thin branches; a soft matte or a binary "
        "mask of the salient foreground."
    ),
    "matting": (
        "Trimap-free image matting: a soft alpha matte of the foreground (hair, fur, semi-transparent edges) for "
        "compositing, without a trimap or any other user input."
    ),
    "portrait": "Portrait matting: soft alpha mattes of the people in a photo, for compositing and background edits.",
    "DIS": (
        "Dichotomous image segmentation of DIS5K-style images (one dominant object, pixel-accurate binary mask); the "
        "checkpoint to compare with the paper's DIS results."
    ),
    "COD": "Camouflaged object detection: segmenting objects that blend into their surroundings (COD10K / CAMO-style images).",
    "HRSOD": "High-resolution salient object detection: the salient object(s) of large photos (HRSOD / UHRSD-style).",
}


def family_resolution(family) -> tuple[int, int]:
    """(height, width) at which a family's parameters and MACs are given: its fixed size, or for a dynamic family
    the square image at the longest edge its rule produces (the most expensive input of the rule)."""
    rule = family.size
    if rule.kind == "fixed":
        return int(rule.height), int(rule.width)
    return int(rule.longest_edge), int(rule.longest_edge)


def family_card_facts(name: str, measure: Measure | None = None) -> dict[str, Any]:
    """The model-card facts of the released family ``name`` (``hub_configs/families/<name>/card.yaml``): the registry's
    facts (:mod:`birefnet_hf.families`) plus parameters and MACs measured at the family's native size."""
    from .families import family_config, get_family

    family = get_family(name)
    config = family_config(family)
    backbone = backbone_facts(family.backbone)
    resolution = family_resolution(family)
    parameters, macs = (measure or MetaMeasurements())(config, resolution)
    rule = family.size
    counted = macs_counting_note(resolution)
    if rule.kind == "dynamic":
        counted += (
            f" The dynamic size rule gives other inputs other counts; this is the square {resolution[0]}x"
            f"{resolution[1]} image, the largest input the rule produces."
        )
    title = f"{family.name} (BiRefNet, {backbone['name']}, {rule.describe().split(' (')[0].split(':')[0]})"
    if family.hub_id.split("/")[0] != "ZhengPeng7":
        title = f"{family.name} (BiRefNet architecture, {backbone['name']})"
    if rule.kind == "fixed":
        resize = f"Images are resized to {rule.height}x{rule.width} (height x width), the size it was trained at"
        limitation = (
            f"{resize}: structures thinner than about one pixel at that scale are lost, and images of another "
            "aspect ratio are distorted by the resize; other sizes (the processor's `size`) are outside its training "
            "distribution."
        )
    else:
        limitation = (
            f"Images keep their aspect ratio and are resized so that the longer side is {rule.longest_edge} "
            f"(trained on sides from {rule.min_side} to {rule.max_side}); a smaller `longest_edge` is faster and "
            "loses fine detail."
        )
    limitations = [
        limitation,
        "Transparent, reflective and camouflaged objects, and low-contrast boundaries, are the typical failure cases.",
        "Not evaluated for fairness across people; do not use it to make decisions about people.",
    ]
    if not family.commercial_use:
        limitations.insert(0, f"Non-commercial use only ({family.license}); see the licence section.")
    facts: dict[str, Any] = {
        "family": family.name,
        "hub_id": family.hub_id,
        "size": family.backbone,
        "title": title,
        "description": f"{family.description} {_architecture_description(backbone, family.backbone)}",
        "use": family.use,
        "backbone": backbone,
        "parameters": parameters,
        "macs": {"resolution": list(resolution), "value": macs, "counted": counted},
        "input_resolution": list(resolution),
        "input_size": {
            "kind": rule.kind,
            "rule": rule.describe(),
            "processor_size": rule.processor_size(),
            **({"trained_sides": [rule.min_side, rule.max_side]} if rule.kind == "dynamic" else {}),
        },
        "config_switches": {key: value for key, value in family.config_switches},
        "training_data": {
            "description": family.training_data
            if family.training_data is not None
            else "Not stated in the sources read (see not_found).",
            "source": "the authors' release (see sources)",
        },
        "intended_use": _FAMILY_USES[family.use],
        "limitations": limitations,
        "license": family.license,
        "license_note": family.license_note,
        "gated": family.gated,
        "commercial_use": family.commercial_use,
        "quoted_figures": [figure.as_dict() for figure in family.figures],
        "sources": list(family.sources),
        "not_found": list(family.not_found),
        "paper": dict(PAPER),
        "citation": CITATION,
    }
    return facts


class _CardDumper(yaml.SafeDumper):
    """YAML dumper writing multi-line strings as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_CardDumper.add_representer(str, _represent_str)


def card_yaml(facts: dict[str, Any]) -> str:
    """``card.yaml`` text: a header comment, then the facts in a stable order."""
    subject = f"the released family {facts['family']}" if "family" in facts else f"BiRefNet {facts['size']}"
    header = (
        f"# Model-card facts of {subject}, generated by `python -m birefnet_hf.hub_configs`.\n"
        "# Do not edit by hand: change birefnet_hf/hub_configs.py and regenerate.\n"
    )
    return header + yaml.dump(facts, Dumper=_CardDumper, sort_keys=False, allow_unicode=True, width=100)


def render_hub_config_files(size: str, measure: Measure | None = None) -> dict[str, str]:
    """``{file name: text}`` of ``hub_configs/<size>/``."""
    return {
        "config.json": config_json(hub_config(size)),
        "preprocessor_config.json": preprocessor_config_json(),
        "card.yaml": card_yaml(card_facts(size, measure)),
    }


def render_family_config_files(name: str, measure: Measure | None = None) -> dict[str, str]:
    """``{file name: text}`` of ``hub_configs/families/<name>/``: the family's config, its image processor at the
    native size (or its dynamic rule) and its card facts."""
    from .families import family_config, get_family

    family = get_family(name)
    return {
        "config.json": config_json(family_config(family)),
        "preprocessor_config.json": preprocessor_config_json(family.size.processor_size()),
        "card.yaml": card_yaml(family_card_facts(family.name, measure)),
    }


def _entries(sizes: Iterable[str], families: Iterable[str]) -> list[tuple[str, Callable[[Measure], dict[str, str]]]]:
    """``(folder relative to hub_configs/, renderer)`` for the selected sizes and families, checked."""
    from .families import get_family

    entries = []
    for size in sizes:
        _check_size(size)
        entries.append((size, lambda measure, size=size: render_hub_config_files(size, measure)))
    for name in families:
        family = get_family(name)
        entries.append(
            (f"{FAMILIES_FOLDER}/{family.name}", lambda measure, name=family.name: render_family_config_files(name, measure))
        )
    return entries


# ------------------------------------------------------------------------------------------------------ files
def _check_size(size: str) -> None:
    if size not in ALL_SIZES:
        raise ValueError(f"unknown size {size!r}; the sizes with hub configs are {', '.join(ALL_SIZES)}.")


def write_hub_configs(
    output_dir: str | os.PathLike,
    sizes: Iterable[str] = HUB_SIZES,
    families: Iterable[str] = (),
    measure: Measure | None = None,
) -> list[Path]:
    """(Re)write ``output_dir/<size>/`` for ``sizes`` and ``output_dir/families/<name>/`` for ``families``; every file
    is replaced atomically. Returns the written paths."""
    from tqdm.auto import tqdm

    output_dir = Path(output_dir)
    entries = _entries(sizes, families)
    measure = measure or MetaMeasurements()
    written = []
    for folder, render in tqdm(entries, desc="hub configs", unit="folder"):
        for name, text in render(measure).items():
            path = output_dir / folder / name
            write_text(path, text)
            written.append(path)
    return written


def diff_hub_configs(
    output_dir: str | os.PathLike,
    sizes: Iterable[str] = HUB_SIZES,
    families: Iterable[str] = (),
    measure: Measure | None = None,
) -> list[str]:
    """Files under ``output_dir`` that are missing or differ from what the code produces (empty: in sync).
    ``measure``: where the parameter and MAC counts come from (default: measured, see :class:`MetaMeasurements`)."""
    output_dir = Path(output_dir)
    measure = measure or MetaMeasurements()
    problems = []
    for folder, render in _entries(sizes, families):
        for name, text in render(measure).items():
            path = output_dir / folder / name
            if not path.is_file():
                problems.append(f"{path}: missing")
            elif path.read_text(encoding="utf-8") != text:
                problems.append(f"{path}: differs from the generated content")
    return problems


def load_hub_config_folder(folder: str | os.PathLike) -> dict[str, Any]:
    """Read a ``hub_configs/<size>/`` folder: ``{"config": BiRefNetConfig, "preprocessor": dict, "card": dict}``.

    Raises ``FileNotFoundError`` / ``ValueError`` naming the file when one is missing or malformed.
    """
    folder = Path(folder)
    for name in HUB_CONFIG_FILES:
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"{folder / name} is missing; regenerate the hub configs with "
                f"`python -m birefnet_hf.hub_configs --output-dir {folder.parent}`."
            )
    try:
        config = BiRefNetConfig.from_json_file(str(folder / "config.json"))
    except (ValueError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"{folder / 'config.json'} is not a valid BiRefNet config: {error}") from error
    try:
        preprocessor = json.loads((folder / "preprocessor_config.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{folder / 'preprocessor_config.json'} is not valid JSON: {error}") from error
    try:
        card = yaml.safe_load((folder / "card.yaml").read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{folder / 'card.yaml'} is not valid YAML: {error}") from error
    required = (
        "size",
        "title",
        "description",
        "backbone",
        "parameters",
        "macs",
        "training_data",
        "intended_use",
        "limitations",
        "license",
        "citation",
    )
    missing = [key for key in required if not isinstance(card, dict) or key not in card]
    if missing:
        raise ValueError(f"{folder / 'card.yaml'} lacks the fields {missing}.")
    if card["size"] != config.backbone:
        raise ValueError(
            f"{folder}: card.yaml describes {card['size']!r} but config.json has backbone {config.backbone!r}."
        )
    return {"config": config, "preprocessor": preprocessor, "card": card}


def main(argv: list[str] | None = None) -> int:
    from .families import FAMILIES

    parser = argparse.ArgumentParser(
        prog="python -m birefnet_hf.hub_configs",
        description="(Re)write hub_configs/<size>/ and hub_configs/families/<name>/ (config.json, "
        "preprocessor_config.json, card.yaml) from code. Without --only / --family: every size and every family.",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=HUB_CONFIGS_DIR,
        help="folder holding one sub-folder per size (default: the package's own, birefnet_hf/hub_configs_data)",
    )
    parser.add_argument("--only", nargs="+", choices=ALL_SIZES, metavar="SIZE", help="only these sizes")
    parser.add_argument(
        "--family", nargs="+", choices=list(FAMILIES), metavar="NAME", help="only these released families"
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the files differ from the code"
    )
    args = parser.parse_args(argv)
    if args.only is None and args.family is None:
        sizes, families = list(ALL_SIZES), list(FAMILIES)
    else:
        sizes, families = args.only or [], args.family or []
    if args.check:
        problems = diff_hub_configs(args.output_dir, sizes, families)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(
                "hub configs are out of date; regenerate with `python -m birefnet_hf.hub_configs`.",
                file=sys.stderr,
            )
        return 1 if problems else 0
    written = write_hub_configs(args.output_dir, sizes, families)
    print(f"wrote {len(written)} files under {args.output_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
