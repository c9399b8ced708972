# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The released BiRefNet families: one typed record per published checkpoint.

Users pick a released checkpoint, not a backbone. Each :class:`Family` says which Hub repository holds it, which
backbone and config switches its weights imply, the input size it was trained for (:class:`SizeRule`), what it is
for, under which licence it may be used, and the figures its authors published for it (:class:`QuotedFigure`, always
labelled as quotes, never used as our own evaluation). Facts come from the authors' README, ``config.py`` and model
cards; where a fact was not found there, the record says so (``None`` plus a note) instead of guessing.

What the registry drives:

* :func:`family_for` recognises a family from a Hub id or a folder named after it, and :func:`image_processor_for`
  gives its image processor at the native size (2048 for ``BiRefNet_HR``, 1440x2560 for ``BiRefNet_lite-2K``, 512
  for ``BiRefNet_512x512``, the dynamic rule for ``BiRefNet_dynamic``), which ``birefnet-hf segment --model`` and
  :func:`~birefnet_hf.segment.load_model_and_processor` use when the repository has no ``preprocessor_config.json``
  (the authors' repositories have none); :func:`family_of_model` recognises it from a loaded model (transformers'
  ``config.name_or_path``), and :func:`native_image_processor` is the one rule for "which processor does this model
  run at" (its ``preprocessor_config.json``, else its family's native size, else 1024x1024), which
  ``pipeline("background-removal", model=model)`` and :func:`~birefnet_hf.pipelines.birefnet_pipeline` apply;
* :func:`family_config` is the :class:`BiRefNetConfig` of a family (``hub_configs/families/<name>/`` is generated
  from it, and ``birefnet-hf publish --family`` builds a converted repository with it);
* :func:`refuse_pre_2024_layout` (from :mod:`birefnet_hf.conversion_mapping`, re-exported here) names the authors'
  early (pre-2024) checkpoint layout, which this package refuses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from transformers.utils import logging

from .configuration_birefnet import BiRefNetConfig
from .conversion_mapping import PRE_2024_PREFIXES, refuse_pre_2024_layout

logger = logging.get_logger(__name__)

Use = Literal["general", "matting", "portrait", "DIS", "COD", "HRSOD"]

#: Where the facts below were read (all through the project's search tools; quoted, not re-measured).
SOURCE_README = "authors' README (github.com/ZhengPeng7/BiRefNet), model zoo"
SOURCE_CONFIG = "authors' config.py (github.com/ZhengPeng7/BiRefNet)"
SOURCE_NEWS = "authors' README, News section"


@dataclass(frozen=True)
class SizeRule:
    """The input size a family was trained for.

    ``kind="fixed"``: every image is resized to ``height`` x ``width`` (square or not).
    ``kind="dynamic"``: trained on sides from ``min_side`` to ``max_side``; the image keeps its aspect ratio and its
    longer side becomes ``longest_edge`` (both sides multiples of 32), see :meth:`processor_size`.
    """

    kind: Literal["fixed", "dynamic"]
    height: int | None = None
    width: int | None = None
    longest_edge: int | None = None
    min_side: int | None = None
    max_side: int | None = None
    rule: str = ""

    def __post_init__(self) -> None:
        if self.kind == "fixed" and (not self.height or not self.width or self.height % 32 or self.width % 32):
            raise ValueError(f"fixed SizeRule needs height and width that are multiples of 32, got {self}.")
        if self.kind == "dynamic" and not (self.longest_edge and self.min_side and self.max_side):
            raise ValueError(f"dynamic SizeRule needs longest_edge, min_side and max_side, got {self}.")

    def processor_size(self) -> dict[str, int]:
        """The ``size`` of :class:`~birefnet_hf.BiRefNetImageProcessor` that applies this rule."""
        if self.kind == "fixed":
            return {"height": int(self.height), "width": int(self.width)}
        return {"longest_edge": int(self.longest_edge)}

    def describe(self) -> str:
        if self.kind == "fixed":
            shape = "square" if self.height == self.width else "non-square"
            return f"{self.height}x{self.width} (height x width, fixed {shape})"
        return self.rule


@dataclass(frozen=True)
class QuotedFigure:
    """Numbers the authors published for a family, copied from ``source``, never re-measured here."""

    source: str
    test_set: str
    metrics: tuple[tuple[str, float], ...]
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = {"quoted_from": self.source, "test_set": self.test_set, "metrics": dict(self.metrics)}
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class Family:
    """One released BiRefNet checkpoint."""

    name: str
    hub_id: str
    backbone: str
    size: SizeRule
    use: Use
    description: str
    training_data: str | None
    license: str
    license_note: str
    gated: bool = False
    config_switches: tuple[tuple[str, Any], ...] = ()
    figures: tuple[QuotedFigure, ...] = ()
    sources: tuple[str, ...] = ()
    not_found: tuple[str, ...] = field(default=())

    @property
    def commercial_use(self) -> bool:
        return not self.license.startswith("cc-by-nc")

    def as_dict(self) -> dict[str, Any]:
        """Plain data for cards and documentation."""
        return {
            "name": self.name,
            "hub_id": self.hub_id,
            "backbone": self.backbone,
            "input_size": self.size.describe(),
            "processor_size": self.size.processor_size(),
            "use": self.use,
            "description": self.description,
            "training_data": self.training_data if self.training_data is not None else "not stated in the sources read",
            "license": self.license,
            "license_note": self.license_note,
            "gated": self.gated,
            "config_switches": dict(self.config_switches),
            "quoted_figures": [figure.as_dict() for figure in self.figures],
            "sources": list(self.sources),
            "not_found": list(self.not_found),
        }


_MIT = "mit"
_MIT_NOTE = "MIT, the licence of the authors' code and released weights (github.com/ZhengPeng7/BiRefNet)."
_SQUARE_1024 = SizeRule("fixed", 1024, 1024)
#: The authors' loss weights by task (config.py ``lambdas_pix_last``): general use adds MAE 100; matting drops IoU.
_GENERAL_LOSS = (("loss_mae_weight", 100.0),)
_MATTING_LOSS = (("loss_iou_weight", 0.0), ("loss_mae_weight", 100.0))
_GENERAL_SETS = (
    "DIS5K-TR, DIS-TEs, DUTS-TR_TE, HRSOD-TR_TE, UHRSD-TR_TE, HRS10K-TR_TE, TR-P3M-10k, TE-P3M-500-NP, "
    "TE-P3M-500-P, TR-humans"
)
_MATTING_SETS = (
    "P3M-10k (except TE-P3M-500-NP), TR-humans, AM-2k, AIM-500, Human-2k (synthesized with BG-20k), "
    "Distinctions-646 (synthesized with BG-20k), HIM2K, PPM-100"
)
_NO_FIGURES = "published figures (not found in the sources read)"


def _family(name: str, owner: str = "ZhengPeng7", **kwargs) -> Family:
    return Family(name=name, hub_id=f"{owner}/{name}", **kwargs)


#: Every released family, by name (the Hub repository's name).
FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        _family(
            "BiRefNet", backbone="swin_v1_l", size=_SQUARE_1024, use="general",
            description="The general-use BiRefNet (Swin-L) for background removal and dichotomous segmentation.",
            training_data=_GENERAL_SETS, license=_MIT, license_note=_MIT_NOTE, config_switches=_GENERAL_LOSS,
            figures=(QuotedFigure(SOURCE_README + " ('general use', swin_v1_large row)", "DIS-VD",
                                  (("S", 0.911), ("wF", 0.875), ("HCE", 1069.0))),),
            sources=(SOURCE_README, SOURCE_CONFIG),
        ),
        _family(
            "BiRefNet_lite", backbone="swin_v1_t", size=_SQUARE_1024, use="general",
            description="The general-use BiRefNet with the light Swin-T backbone.",
            training_data=_GENERAL_SETS, license=_MIT, license_note=_MIT_NOTE, config_switches=_GENERAL_LOSS,
            figures=(QuotedFigure(SOURCE_README + " ('general use', swin_v1_tiny row)", "DIS-VD",
                                  (("S", 0.882), ("wF", 0.830), ("HCE", 1175.0))),),
            sources=(SOURCE_README,),
        ),
        _family(
            "BiRefNet_lite-2K", backbone="swin_v1_t", size=SizeRule("fixed", 1440, 2560), use="general",
            description="BiRefNet_lite trained at 2560x1440 (width x height) for 2K inputs.",
            training_data=(
                "DIS5K (except DIS-VD), HRS10K, UHRSD, P3M-10k (except TE-P3M-500-NP), TR-humans, AM-2k, AIM-500, "
                "Human-2k, Distinctions-646, HIM2K, PPM-100 (model card)"
            ),
            license=_MIT, license_note=_MIT_NOTE, config_switches=_GENERAL_LOSS,
            figures=(QuotedFigure("model card of ZhengPeng7/BiRefNet_lite-2K (epoch 232)", "DIS-VD",
                                  (("maxFm", 0.867), ("wFmeasure", 0.831))),),
            sources=("model card of ZhengPeng7/BiRefNet_lite-2K", SOURCE_CONFIG + ": size (2560, 1440) for General-2K"),
        ),
        _family(
            "BiRefNet_512x512", backbone="swin_v1_l", size=SizeRule("fixed", 512, 512), use="general",
            description="The general-use BiRefNet trained at 512x512 for faster low-resolution inference.",
            training_data=None, license=_MIT, license_note=_MIT_NOTE, config_switches=_GENERAL_LOSS,
            sources=("authors' Hub repository ZhengPeng7/BiRefNet_512x512",),
            not_found=("training sets", _NO_FIGURES),
        ),
        _family(
            "BiRefNet_HR", backbone="swin_v1_l", size=SizeRule("fixed", 2048, 2048), use="general",
            description="The general-use BiRefNet trained at 2048x2048 for high-resolution inputs.",
            training_data=None, license=_MIT, license_note=_MIT_NOTE, config_switches=_GENERAL_LOSS,
            sources=("authors' Hub post announcing BiRefNet_HR ('trained with images in 2048x2048')",),
            not_found=("training sets", _NO_FIGURES),
        ),
        _family(
            "BiRefNet_HR-matting", backbone="swin_v1_l", size=SizeRule("fixed", 2048, 2048), use="matting",
            description="The matting BiRefNet trained at 2048x2048 for high-resolution inputs.",
            training_data=None, license=_MIT, license_note=_MIT_NOTE, config_switches=_MATTING_LOSS,
            sources=(SOURCE_NEWS + " (Feb 12, 2025: 'trained on images in 2048x2048')",),
            not_found=("training sets", _NO_FIGURES),
        ),
        _family(
            "BiRefNet-matting", backbone="swin_v1_l", size=_SQUARE_1024, use="matting",
            description="General trimap-free matting: a soft alpha matte of the foreground.",
            training_data=_MATTING_SETS, license=_MIT, license_note=_MIT_NOTE, config_switches=_MATTING_LOSS,
            figures=(QuotedFigure(SOURCE_README + " ('general matting' row)", "TE-P3M-500-NP",
                                  (("S", 0.979), ("wF", 0.988))),),
            sources=(SOURCE_README,),
        ),
        _family(
            "BiRefNet_lite-matting", backbone="swin_v1_t", size=_SQUARE_1024, use="matting",
            description="General matting with the light Swin-T backbone.",
            training_data=None, license=_MIT, license_note=_MIT_NOTE, config_switches=_MATTING_LOSS,
            sources=("authors' Hub repository ZhengPeng7/BiRefNet_lite-matting",),
            not_found=("training sets", _NO_FIGURES),
        ),
        _family(
            "BiRefNet_dynamic", backbone="swin_v1_l",
            size=SizeRule(
                "dynamic", longest_edge=2304, min_side=256, max_side=2304,
                rule=(
                    "dynamic: trained on sides from 256 to 2304; the image keeps its aspect ratio, its longer side "
                    "becomes 2304 (the top of the training range) and both sides are rounded to multiples of 32; "
                    "pass size={'longest_edge': L} with 256 <= L <= 2304 to trade detail for speed"
                ),
            ),
            use="general",
            description="The general-use BiRefNet trained on dynamic resolutions, for inputs of any size and shape.",
            training_data=None, license=_MIT, license_note=_MIT_NOTE, config_switches=_GENERAL_LOSS,
            sources=(SOURCE_NEWS + " (Mar 31, 2025: 'dynamic resolution range from 256x256 to 2304x2304')",
                     SOURCE_CONFIG + ": dynamic_size ((256, 2304), (256, 2304))"),
            not_found=("training sets", _NO_FIGURES),
        ),
        _family(
            "BiRefNet-portrait", backbone="swin_v1_l", size=_SQUARE_1024, use="portrait",
            description="Portrait matting.",
            training_data="P3M-10k, humans", license=_MIT, license_note=_MIT_NOTE, config_switches=_MATTING_LOSS,
            figures=(QuotedFigure(SOURCE_README + " ('portrait matting' row)", "P3M-500-P",
                                  (("S", 0.983), ("wF", 0.989))),),
            sources=(SOURCE_README,),
        ),
        _family(
            "BiRefNet-DIS5K", backbone="swin_v1_l", size=_SQUARE_1024, use="DIS",
            description="The paper's DIS model (trained on DIS5K-TR), for comparison on the DIS benchmark.",
            training_data="DIS5K-TR", license=_MIT, license_note=_MIT_NOTE,
            figures=(QuotedFigure("Table 7 of the paper (BiRefNet_SwinL)", "DIS-TE1..4",
                                  (("HCE", 916.0), ("wF", 0.858))),),
            sources=(SOURCE_README + " (models in the original paper: DIS, DIS5K-TR, swin_v1_large)",),
        ),
        _family(
            "BiRefNet-DIS5K-TR_TEs", backbone="swin_v1_l", size=_SQUARE_1024, use="DIS",
            description="BiRefNet trained on DIS5K-TR and the DIS test sets (the earlier general-use weights).",
            training_data="DIS5K-TR, DIS-TEs", license=_MIT, license_note=_MIT_NOTE,
            figures=(QuotedFigure(SOURCE_README + " ('general use', DIS5K-TR, DIS-TEs row)", "DIS-VD",
                                  (("S", 0.907), ("wF", 0.865), ("HCE", 1059.0))),),
            sources=(SOURCE_README,),
        ),
        _family(
            "BiRefNet-COD", backbone="swin_v1_l", size=_SQUARE_1024, use="COD",
            description="The paper's camouflaged-object-detection model.",
            training_data="COD10K-TR, CAMO-TR", license=_MIT, license_note=_MIT_NOTE,
            sources=(SOURCE_README + " (models in the original paper: COD)",),
            not_found=(_NO_FIGURES,),
        ),
        _family(
            "BiRefNet-HRSOD", backbone="swin_v1_l", size=_SQUARE_1024, use="HRSOD",
            description="The paper's high-resolution salient-object-detection model.",
            training_data=None, license=_MIT, license_note=_MIT_NOTE,
            sources=(SOURCE_README + " (models in the original paper: HRSOD, several training-set choices)",),
            not_found=("training sets (which HRSOD training-set combination the Hub weights use)", _NO_FIGURES),
        ),
        _family(
            "BiRefNet-legacy", backbone="swin_v1_l", size=_SQUARE_1024, use="general",
            description="Earlier general-use BiRefNet weights, kept for reproducibility.",
            training_data=None, license=_MIT, license_note=_MIT_NOTE,
            sources=("authors' Hub repository ZhengPeng7/BiRefNet-legacy",),
            not_found=("training sets", _NO_FIGURES),
        ),
        _family(
            "RMBG-2.0", owner="briaai", backbone="swin_v1_l", size=_SQUARE_1024, use="general",
            description=(
                "BRIA's background-removal model: the BiRefNet architecture trained on BRIA's private data. "
                "Non-commercial use only; access to the weights is gated by BRIA."
            ),
            training_data="BRIA's private data (not public)", license="cc-by-nc-4.0",
            license_note=(
                "Creative Commons Attribution-NonCommercial 4.0, set by BRIA AI; the Hub repository is gated "
                "(accept BRIA's terms first). Commercial use needs an agreement with BRIA. This package refuses to "
                "publish it under any other licence."
            ),
            gated=True,
            sources=(SOURCE_README + " (third-party creations: 'weights are for only non-commercial use')",),
            not_found=(_NO_FIGURES,),
        ),
    )
}


# --------------------------------------------------------------------------------------------------- lookups
def get_family(name: str) -> Family:
    """The family called ``name`` (the Hub repository name, or the full Hub id, any case)."""
    family = family_for(name)
    if family is None:
        raise ValueError(f"unknown BiRefNet family {name!r}; released families: {', '.join(FAMILIES)}.")
    return family


def family_for(name_or_path: str | os.PathLike | None) -> Family | None:
    """The family a Hub id (``"ZhengPeng7/BiRefNet_HR"``) or a folder named after its repository
    (``.../BiRefNet_HR``, ``.../ZhengPeng7/BiRefNet_HR``) stands for; ``None`` when it names none."""
    if name_or_path is None:
        return None
    text = os.fspath(name_or_path).rstrip("/\\").replace("\\", "/")
    by_name = {name.lower(): family for name, family in FAMILIES.items()}
    by_id = {family.hub_id.lower(): family for family in FAMILIES.values()}
    lowered = text.lower()
    if lowered in by_id:
        return by_id[lowered]
    parts = lowered.split("/")
    if len(parts) >= 2 and "/".join(parts[-2:]) in by_id:
        return by_id["/".join(parts[-2:])]
    if parts[-1] in by_name:
        return by_name[parts[-1]]
    # the Hub cache: models--ZhengPeng7--BiRefNet_HR/snapshots/<sha>
    for part in parts:
        if part.startswith("models--"):
            hub_id = part[len("models--") :].replace("--", "/")
            if hub_id in by_id:
                return by_id[hub_id]
    return None


def family_config(family: Family | str) -> BiRefNetConfig:
    """The :class:`BiRefNetConfig` of a family: its backbone and the switches its checkpoint implies."""
    family = get_family(family) if isinstance(family, str) else family
    config = BiRefNetConfig(backbone=family.backbone, released_family=family.name, **dict(family.config_switches))
    config.architectures = ["BiRefNetForImageSegmentation"]
    return config


def family_of_model(model_or_config: Any) -> Family | None:
    """The family a loaded model (or its config) came from, ``None`` when it names none.

    A model converted from an authors' repository records its family in ``config.released_family``, which
    ``save_pretrained`` keeps; that comes first. Otherwise: transformers records where a model was loaded from in
    ``config.name_or_path`` (the Hub id, the folder or the Hub cache snapshot), and
    :meth:`~birefnet_hf.BiRefNetForImageSegmentation.from_pretrained` keeps it when it converts an authors' repository, so ``family_for(config.name_or_path)`` names the family. A model whose backbone
    is not the family's (a fine-tuned model saved in a folder named like a family, say) is not taken for it: the
    name would give the wrong native size, so a warning says so and ``None`` is returned.
    """
    config = getattr(model_or_config, "config", model_or_config)
    recorded = getattr(config, "released_family", None)  # set when an authors' repository was converted on load
    if recorded in FAMILIES:
        family, source = FAMILIES[recorded], "config.released_family names the released family"
    else:
        family = family_for(getattr(config, "name_or_path", None) or None)
        source = f"{getattr(config, 'name_or_path', '')!r} is named like the released family"
    backbone = getattr(config, "backbone", None)
    if family is not None and backbone is not None and backbone != family.backbone:
        logger.warning(
            f"{source} {family.name} ({family.backbone}), but the model's backbone is {backbone}: not using "
            f"{family.name}'s input size {family.size.describe()} for it."
        )
        return None
    return family


def image_processor_for(name_or_path: Any, backend: str = "torchvision", **kwargs):
    """The BiRefNet image processor at a family's native size (``None`` when ``name_or_path`` names no family).

    ``name_or_path``: a Hub id or folder (``"ZhengPeng7/BiRefNet_HR"``), a :class:`Family`, or a loaded model / its
    config (see :func:`family_of_model`), e.g. ``pipeline("image-segmentation", model=model,
    image_processor=image_processor_for(model))``. ``backend``: ``"torchvision"``
    (:class:`~birefnet_hf.BiRefNetImageProcessor`) or ``"pil"`` (:class:`~birefnet_hf.BiRefNetImageProcessorPil`).
    ``kwargs`` go to the processor (a ``size`` there wins).
    """
    from .image_processing_birefnet import BiRefNetImageProcessor, BiRefNetImageProcessorPil

    if backend not in ("torchvision", "pil"):
        raise ValueError(f"backend must be 'torchvision' or 'pil', got {backend!r}.")
    if isinstance(name_or_path, Family):
        family = name_or_path
    elif name_or_path is None or isinstance(name_or_path, (str, os.PathLike)):
        family = family_for(name_or_path)
    else:
        family = family_of_model(name_or_path)
    if family is None:
        return None
    kwargs.setdefault("size", family.size.processor_size())
    cls = BiRefNetImageProcessorPil if backend == "pil" else BiRefNetImageProcessor
    return cls(**kwargs)


def native_image_processor(model_or_source: Any, backend: str = "torchvision", **hub_kwargs):
    """The image processor a BiRefNet model or repository runs at: the repository's ``preprocessor_config.json``
    when it has one (its errors are raised, never replaced by a guess), else its released family's native size
    (:func:`image_processor_for`), else the paper's 1024x1024 default with a warning.

    ``model_or_source``: a Hub id or folder, or a loaded model (its ``config.name_or_path`` is the source).
    ``hub_kwargs`` (``revision``, ``token``, ``cache_dir``, ...) go to the file look-up and the processor loading.
    """
    from transformers import AutoImageProcessor
    from transformers.utils import cached_file

    from .image_processing_birefnet import BiRefNetImageProcessor, BiRefNetImageProcessorPil

    if backend not in ("torchvision", "pil"):
        raise ValueError(f"backend must be 'torchvision' or 'pil', got {backend!r}.")
    is_source = isinstance(model_or_source, (str, os.PathLike))
    config = None if is_source else getattr(model_or_source, "config", model_or_source)
    source = os.fspath(model_or_source) if is_source else (getattr(config, "name_or_path", None) or None)
    if source:
        if os.path.isdir(source):
            has_processor_file = os.path.isfile(os.path.join(source, "preprocessor_config.json"))
        else:
            try:  # a Hub id (in the cache when offline); a path that no longer exists is no Hub id either
                has_processor_file = cached_file(
                    source,
                    "preprocessor_config.json",
                    _raise_exceptions_for_missing_entries=False,
                    _raise_exceptions_for_connection_errors=False,
                    **hub_kwargs,
                ) is not None
            except OSError:
                has_processor_file = False
        if has_processor_file:
            return AutoImageProcessor.from_pretrained(source, backend=backend, **hub_kwargs)
    processor = image_processor_for(model_or_source if config is None else config, backend=backend)
    if processor is not None:
        logger.info(f"{source!r} is a released BiRefNet family: input size {dict(processor.size)}.")
        return processor
    logger.warning(
        f"No preprocessor_config.json with {source or type(model_or_source).__name__!r} and no released family "
        "recognised; using the 1024x1024 default input size (pass an image processor to choose another)."
    )
    return BiRefNetImageProcessorPil() if backend == "pil" else BiRefNetImageProcessor()


def check_publish_license(family: Family | str, license: str | None) -> str:
    """The licence a family may be published under: its own. Anything else (e.g. MIT for RMBG-2.0) is refused."""
    family = get_family(family) if isinstance(family, str) else family
    if license is not None and license.lower() != family.license:
        raise ValueError(
            f"{family.name} is licensed {family.license} ({family.license_note}); it cannot be published under "
            f"{license!r}."
        )
    return family.license


__all__ = [
    "FAMILIES",
    "PRE_2024_PREFIXES",
    "Family",
    "QuotedFigure",
    "SizeRule",
    "check_publish_license",
    "family_config",
    "family_for",
    "family_of_model",
    "get_family",
    "image_processor_for",
    "native_image_processor",
    "refuse_pre_2024_layout",
]
