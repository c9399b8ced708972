# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""BiRefNet model configuration."""

from __future__ import annotations

import numbers
import os

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.utils import CONFIG_NAME, logging

logger = logging.get_logger(__name__)


#: Backbones BiRefNet is published with, and the facts the model needs about each one.
#: ``channels`` are the four pyramid levels (strides 4, 8, 16, 32); ``timm_name`` is the timm architecture
#: (with the pretrained tag the authors start from) used to build the backbone and fetch ImageNet weights;
#: ``drop_path_rate`` is the stochastic-depth rate of the authors' backbone definitions.
BACKBONE_SPECS: dict[str, dict] = {
    "swin_v1_t": {
        "family": "swin",
        "channels": (96, 192, 384, 768),
        "timm_name": "swin_tiny_patch4_window7_224.ms_in22k_ft_in1k",
        "window_size": 7,
        "drop_path_rate": 0.2,
    },
    "swin_v1_s": {
        "family": "swin",
        "channels": (96, 192, 384, 768),
        "timm_name": "swin_small_patch4_window7_224.ms_in22k_ft_in1k",
        "window_size": 7,
        "drop_path_rate": 0.2,
    },
    "swin_v1_b": {
        "family": "swin",
        "channels": (128, 256, 512, 1024),
        "timm_name": "swin_base_patch4_window12_384.ms_in22k_ft_in1k",
        "window_size": 12,
        "drop_path_rate": 0.2,
    },
    "swin_v1_l": {
        "family": "swin",
        "channels": (192, 384, 768, 1536),
        "timm_name": "swin_large_patch4_window12_384.ms_in22k_ft_in1k",
        "window_size": 12,
        "drop_path_rate": 0.2,
    },
    "pvt_v2_b0": {"family": "pvt_v2", "channels": (32, 64, 160, 256), "timm_name": "pvt_v2_b0.in1k", "drop_path_rate": 0.1},
    "pvt_v2_b1": {"family": "pvt_v2", "channels": (64, 128, 320, 512), "timm_name": "pvt_v2_b1.in1k", "drop_path_rate": 0.1},
    "pvt_v2_b2": {"family": "pvt_v2", "channels": (64, 128, 320, 512), "timm_name": "pvt_v2_b2.in1k", "drop_path_rate": 0.1},
    "pvt_v2_b5": {"family": "pvt_v2", "channels": (64, 128, 320, 512), "timm_name": "pvt_v2_b5.in1k", "drop_path_rate": 0.1},
    # torchvision CNNs (the authors' ``vgg16`` / ``vgg16bn`` / ``resnet50``): ``torchvision_name`` is the builder and
    # ``stage_slices`` the authors' cut of ``features`` into their ``conv1..conv4`` (see backbones_torchvision.py)
    "vgg16": {
        "family": "torchvision", "channels": (128, 256, 512, 512), "torchvision_name": "vgg16",
        "stage_slices": ((0, 10), (10, 17), (17, 24), (24, 31)), "drop_path_rate": 0.0,
    },
    "vgg16bn": {
        "family": "torchvision", "channels": (128, 256, 512, 512), "torchvision_name": "vgg16_bn",
        "stage_slices": ((0, 14), (14, 24), (24, 34), (34, 44)), "drop_path_rate": 0.0,
    },
    "resnet50": {
        "family": "torchvision", "channels": (256, 512, 1024, 2048), "torchvision_name": "resnet50",
        "drop_path_rate": 0.0,
    },
    # DINOv3 ViTs (timm ``features_only``, one stride-16 map per ``out_indices`` block, same width at every level;
    # the authors' pyramid neck resizes them to strides 4-32 and maps them to Swin-L's widths, see backbones_dinov3.py)
    **{
        name: {
            "family": "dinov3", "channels": (width,) * 4, "timm_name": f"{arch}.lvd1689m", "out_indices": indices,
            "drop_path_rate": 0.0,
        }
        for name, arch, width, indices in (
            ("dino_v3_s", "vit_small_patch16_dinov3", 384, (3, 5, 7, 11)),
            ("dino_v3_s_plus", "vit_small_plus_patch16_dinov3", 384, (3, 5, 7, 11)),
            ("dino_v3_b", "vit_base_patch16_dinov3", 768, (3, 5, 7, 11)),
            ("dino_v3_l", "vit_large_patch16_dinov3", 1024, (5, 11, 17, 23)),
            ("dino_v3_h_plus", "vit_huge_plus_patch16_dinov3", 1280, (7, 15, 23, 31)),
            ("dino_v3_7b", "vit_7b_patch16_dinov3", 4096, (9, 19, 29, 39)),
        )
    },
}

#: Widths the authors' pyramid neck maps single-stride (ViT) features to: Swin-L's, shallow to deep.
PYRAMID_NECK_CHANNELS: tuple[int, int, int, int] = (192, 384, 768, 1536)

MULTI_SCALE_INPUT_MODES = ("none", "add", "cat")
BLOCK_TYPES = ("basic", "residual")
SQUEEZE_BLOCK_TYPES = ("none", "basic", "residual", "aspp", "aspp_deformable")
DECODER_ATTENTIONS = ("none", "aspp", "aspp_deformable")
INTER_CHANNEL_MODES = ("fixed", "adaptive")


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"BiRefNetConfig: `{name}` must be one of {list(choices)}, got {value!r}.")


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_flag(value) -> bool:
    return isinstance(value, bool)


#: What each field must hold (a ``config.json`` written by hand may hold anything): (test, description).
_FIELD_KINDS: dict[str, tuple] = {
    "backbone": (lambda v: isinstance(v, str), "a string"),
    "use_pretrained_backbone": (_is_flag, "true or false"),
    "released_family": (lambda v: v is None or isinstance(v, str), "a family name or null"),
    "backbone_drop_path_rate": (lambda v: v is None or _is_number(v), "a number or null"),
    "multi_scale_input": (lambda v: isinstance(v, str), "a string"),
    "context_feature_fusion_levels": (_is_integer, "an integer"),
    "squeeze_block_type": (lambda v: isinstance(v, str), "a string"),
    "squeeze_block_count": (_is_integer, "an integer"),
    "decoder_block_type": (lambda v: isinstance(v, str), "a string"),
    "decoder_attention": (lambda v: isinstance(v, str), "a string"),
    "deformable_kernel_sizes": (
        lambda v: isinstance(v, (list, tuple)) and all(_is_integer(k) for k in v),
        "a list of integers",
    ),
    "decoder_inter_channels": (lambda v: isinstance(v, str), "a string"),
    "inward_reference": (_is_flag, "true or false"),
    "inward_reference_patch_split": (_is_flag, "true or false"),
    "outward_reference": (_is_flag, "true or false"),
    "multi_stage_supervision": (_is_flag, "true or false"),
    "auxiliary_classification": (_is_flag, "true or false"),
    "num_auxiliary_classes": (_is_integer, "an integer"),
    "use_batch_norm": (_is_flag, "true or false"),
    "freeze_backbone": (lambda v: v is None or _is_flag(v), "true, false or null"),
    **{
        f"loss_{term}_weight": (_is_number, "a number")
        for term in ("bce", "iou", "ssim", "mae", "classification", "gradient")
    },
}


def _check_field_types(config) -> None:
    for name, (test, description) in _FIELD_KINDS.items():
        if not hasattr(config, name):
            continue
        value = getattr(config, name)
        if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
            value = value.item()  # NumPy scalars: stored as Python numbers (config.json must serialise them)
            setattr(config, name, value)
        if not test(value):
            raise ValueError(
                f"BiRefNetConfig: `{name}` must be {description}, got {value!r} ({type(value).__name__})."
            )


def _config_file_name(name_or_path, subfolder: str = "") -> str:
    """What to call the config file of a folder, file or Hub repository in an error message."""
    path = os.fspath(name_or_path)
    if os.path.isfile(path):
        return path
    if os.path.isdir(path):
        return os.path.join(path, subfolder or "", CONFIG_NAME)
    return f"{CONFIG_NAME} of {path!r}" + (f" (subfolder {subfolder!r})" if subfolder else "")


class BiRefNetConfigFileError(ValueError):
    """A ``config.json`` that does not describe a valid BiRefNet; the message names the file and the field."""


@strict
class BiRefNetConfig(PreTrainedConfig):
    r"""
    Configuration of a [`BiRefNetForImageSegmentation`] (Zheng et al., "Bilateral Reference for High-Resolution
    Dichotomous Image Segmentation", CAAI AIR 2024). Defaults reproduce the released BiRefNet checkpoints
    (Swin-L backbone, every component of the paper switched on). Each switch that the paper ablates (Tables 2 and 3)
    is a field here, named after the paper.

    Args:
        backbone (`str`, *optional*, defaults to `"swin_v1_l"`):
            Encoder of the localization module: one of `swin_v1_t`, `swin_v1_s`, `swin_v1_b`, `swin_v1_l`,
            `pvt_v2_b0`, `pvt_v2_b1`, `pvt_v2_b2`, `pvt_v2_b5` (timm), `vgg16`, `vgg16bn`, `resnet50` (torchvision),
            `dino_v3_s`, `dino_v3_s_plus`, `dino_v3_b`, `dino_v3_l`, `dino_v3_h_plus`, `dino_v3_7b` (timm DINOv3
            ViTs with the authors' pyramid neck).
        use_pretrained_backbone (`bool`, *optional*, defaults to `False`):
            Load timm's ImageNet weights into the backbone when the model is built from this config (the paper's
            starting point for training). Never used when loading a BiRefNet checkpoint.
        backbone_drop_path_rate (`float`, *optional*):
            Stochastic-depth rate of the backbone. Defaults to the authors' value for the backbone (0.2 for Swin,
            0.1 for PVT-v2).
        multi_scale_input (`str`, *optional*, defaults to `"cat"`):
            Image pyramid input (IPT, Table 3): `"none"`, or run the backbone a second time on the half-size image and
            `"add"` or `"cat"` (concatenate) its features to the full-size ones at every level.
        context_feature_fusion_levels (`int`, *optional*, defaults to 3):
            Context feature fusion (CFF, Table 3): how many of the shallower levels (0-3) are resized to the deepest
            level and concatenated to it before the squeeze block.
        squeeze_block_type (`str`, *optional*, defaults to `"basic"`):
            Block that squeezes the fused deepest feature (F^e -> F^d, Sec. 3.2): `"none"`, `"basic"` or
            `"residual"` reconstruction blocks, or a plain `"aspp"` / `"aspp_deformable"` module.
        squeeze_block_count (`int`, *optional*, defaults to 1):
            How many squeeze blocks are stacked.
        decoder_block_type (`str`, *optional*, defaults to `"basic"`):
            Reconstruction block (RB, Sec. 3.3) of the reconstruction module: `"basic"` (conv-BN-ReLU, attention,
            conv-BN) or `"residual"` (the same plus a 1x1 shortcut).
        decoder_attention (`str`, *optional*, defaults to `"aspp_deformable"`):
            Multi-receptive-field module inside every reconstruction block (RM, Table 2): `"none"`, `"aspp"`
            (atrous convolutions, dilations 1/6/12/18) or `"aspp_deformable"` (deformable convolutions with
            hierarchical receptive fields, the paper's RB).
        deformable_kernel_sizes (`list[int]`, *optional*, defaults to `[1, 3, 7]`):
            Kernel sizes of the parallel deformable branches of `"aspp_deformable"` (Sec. 3.3).
        decoder_inter_channels (`str`, *optional*, defaults to `"fixed"`):
            Width inside the reconstruction blocks: `"fixed"` (64) or `"adaptive"` (a quarter of the input width).
        inward_reference (`bool`, *optional*, defaults to `True`):
            Inward reference (InRef, Sec. 3.4, Table 2): feed the source image to every decoder stage.
        inward_reference_patch_split (`bool`, *optional*, defaults to `True`):
            Cut the full-resolution image into a grid of patches stacked on the channel axis (the paper's InRef)
            instead of resizing the whole image to each stage's resolution.
        outward_reference (`bool`, *optional*, defaults to `True`):
            Outward reference (OutRef, Sec. 3.4, Table 2): gradient-aware attention in the decoder, supervised in
            training by the image's Laplacian gated by the stage prediction. Needs `multi_stage_supervision`.
        multi_stage_supervision (`bool`, *optional*, defaults to `True`):
            Predict a side output after every reconstruction block in training and supervise it (Sec. 3.6).
        auxiliary_classification (`bool`, *optional*, defaults to `False`):
            Add a classifier on the pooled deepest backbone feature, trained with cross-entropy against the
            image's class (DIS5K). The released models do not use it.
        num_auxiliary_classes (`int`, *optional*, defaults to 219):
            Classes of the auxiliary classifier (219 for DIS5K). Kept apart from `num_labels`, which counts the
            segmentation labels (`id2label`: background / foreground) used by the image-segmentation pipeline.
        use_batch_norm (`bool`, *optional*, defaults to `True`):
            BatchNorm in the decoder. The authors replace every decoder BatchNorm by an identity when training
            with one image per GPU; released checkpoints have BatchNorm.
        freeze_backbone (`bool`, *optional*):
            Keep the backbone's parameters out of training (`requires_grad=False`). Defaults to the authors' choice:
            `True` for the DINOv3 backbones, `False` otherwise.
        loss_bce_weight, loss_iou_weight, loss_ssim_weight, loss_mae_weight, loss_classification_weight,
        loss_gradient_weight (`float`, *optional*):
            Weights of the loss terms (paper Eq. 1: BCE 30, IoU 0.5, SSIM 10, CE 5; the authors' code also has an
            MAE term, off by default, and weighs the outward reference's gradient loss by 1).
        released_family (`str`, *optional*):
            The released checkpoint family the weights were converted from (e.g. `"BiRefNet_HR"`,
            `birefnet_hf.families`), set when an authors' repository is converted on load and kept by
            `save_pretrained`, so that the family's native input size (2048 for HR, 2560x1440 for lite-2K, ...) is
            found again for a saved copy without a `preprocessor_config.json`. `None` for other models. Not part of
            the architecture.
    """

    model_type = "birefnet"

    backbone: str = "swin_v1_l"
    use_pretrained_backbone: bool = False
    backbone_drop_path_rate: float | None = None
    multi_scale_input: str = "cat"
    context_feature_fusion_levels: int = 3
    squeeze_block_type: str = "basic"
    squeeze_block_count: int = 1
    decoder_block_type: str = "basic"
    decoder_attention: str = "aspp_deformable"
    deformable_kernel_sizes: list[int] | tuple[int, ...] = (1, 3, 7)
    decoder_inter_channels: str = "fixed"
    inward_reference: bool = True
    inward_reference_patch_split: bool = True
    outward_reference: bool = True
    multi_stage_supervision: bool = True
    auxiliary_classification: bool = False
    num_auxiliary_classes: int = 219
    use_batch_norm: bool = True
    freeze_backbone: bool | None = None
    loss_bce_weight: float | int = 30.0
    loss_iou_weight: float | int = 0.5
    loss_ssim_weight: float | int = 10.0
    loss_mae_weight: float | int = 0.0
    loss_classification_weight: float | int = 5.0
    loss_gradient_weight: float | int = 1.0
    released_family: str | None = None

    def __post_init__(self, **kwargs):
        _check_field_types(self)
        if self.backbone not in BACKBONE_SPECS:
            raise ValueError(
                f"BiRefNetConfig: unknown `backbone` {self.backbone!r}; choose one of {sorted(BACKBONE_SPECS)}."
            )
        _check_choice("multi_scale_input", self.multi_scale_input, MULTI_SCALE_INPUT_MODES)
        _check_choice("squeeze_block_type", self.squeeze_block_type, SQUEEZE_BLOCK_TYPES)
        _check_choice("decoder_block_type", self.decoder_block_type, BLOCK_TYPES)
        _check_choice("decoder_attention", self.decoder_attention, DECODER_ATTENTIONS)
        _check_choice("decoder_inter_channels", self.decoder_inter_channels, INTER_CHANNEL_MODES)
        if not 0 <= self.context_feature_fusion_levels <= 3:
            raise ValueError(
                "BiRefNetConfig: `context_feature_fusion_levels` must be in 0..3, "
                f"got {self.context_feature_fusion_levels}."
            )
        if self.squeeze_block_count < 1:
            raise ValueError(f"BiRefNetConfig: `squeeze_block_count` must be >= 1, got {self.squeeze_block_count}.")
        self.deformable_kernel_sizes = [int(k) for k in self.deformable_kernel_sizes]
        if not self.deformable_kernel_sizes or any(k < 1 or k % 2 == 0 for k in self.deformable_kernel_sizes):
            raise ValueError(
                "BiRefNetConfig: `deformable_kernel_sizes` must be a non-empty list of odd sizes, "
                f"got {self.deformable_kernel_sizes}."
            )
        if self.outward_reference and not self.multi_stage_supervision:
            raise ValueError(
                "BiRefNetConfig: `outward_reference=True` needs `multi_stage_supervision=True` (its gradient labels "
                "are gated by the side outputs)."
            )
        if self.num_auxiliary_classes < 1:
            raise ValueError(f"BiRefNetConfig: `num_auxiliary_classes` must be >= 1, got {self.num_auxiliary_classes}.")
        if self.backbone_drop_path_rate is None:
            self.backbone_drop_path_rate = float(BACKBONE_SPECS[self.backbone]["drop_path_rate"])
        if self.id2label is None and kwargs.get("num_labels") is None:
            self.id2label = {0: "background", 1: "foreground"}
        super().__post_init__(**kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """[`~transformers.PreTrainedConfig.from_pretrained`], with invalid fields reported together with the file
        that holds them (a `BiRefNetConfigFileError`, a `ValueError`)."""
        try:
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        except BiRefNetConfigFileError:
            raise
        except (ValueError, TypeError) as error:
            where = _config_file_name(pretrained_model_name_or_path, kwargs.get("subfolder", ""))
            raise BiRefNetConfigFileError(f"{where}: {error}") from error

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        """[`~transformers.PreTrainedConfig.from_dict`]; when it comes from a file (`AutoConfig` passes
        `name_or_path`), invalid fields are reported with the file's name."""
        source = kwargs.get("name_or_path")
        try:
            return super().from_dict(config_dict, **kwargs)
        except BiRefNetConfigFileError:
            raise
        except (ValueError, TypeError) as error:
            if not source:
                raise
            raise BiRefNetConfigFileError(f"{_config_file_name(source, kwargs.get('subfolder', ''))}: {error}") from error

    @property
    def backbone_channels(self) -> tuple[int, int, int, int]:
        """Channels of the backbone's four levels (strides 4, 8, 16, 32), one pass."""
        return tuple(BACKBONE_SPECS[self.backbone]["channels"])

    @property
    def encoder_channels(self) -> tuple[int, int, int, int]:
        """Channels of the four levels after the image-pyramid input (doubled by `"cat"`), shallow to deep."""
        factor = 2 if self.multi_scale_input == "cat" else 1
        return tuple(c * factor for c in self.backbone_channels)

    @property
    def freezes_backbone(self) -> bool:
        """`freeze_backbone`, or when unset the authors' choice: DINOv3 frozen (``freeze_bb = 'dino_v3' in bb``)."""
        if self.freeze_backbone is not None:
            return bool(self.freeze_backbone)
        return BACKBONE_SPECS[self.backbone]["family"] == "dinov3"

    @property
    def uses_pyramid_neck(self) -> bool:
        """Whether the backbone gives single-stride features that the authors' pyramid neck turns into a pyramid."""
        return BACKBONE_SPECS[self.backbone]["family"] == "dinov3"

    @property
    def decoder_channels(self) -> tuple[int, int, int, int]:
        """Channels of the four levels the reconstruction module works on: the encoder's, or after the pyramid neck
        Swin-L's (doubled by ``"cat"``), as in the authors' code for ViT backbones."""
        if not self.uses_pyramid_neck:
            return self.encoder_channels
        factor = 2 if self.multi_scale_input == "cat" else 1
        return tuple(c * factor for c in PYRAMID_NECK_CHANNELS)


__all__ = ["BiRefNetConfig", "BiRefNetConfigFileError", "BACKBONE_SPECS", "PYRAMID_NECK_CHANNELS"]
