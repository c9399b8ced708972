"""``birefnet-hf publish``: build a Hub-ready folder per backbone size (weights, image processor, model code for
``trust_remote_code`` users, ``README.md`` model card) and push each one to the Hub in a single commit.

    # dry run: random weights, folders under ./publish-dry-run/<size>/
    birefnet-hf publish --random-init --dry-run --output-dir publish-dry-run --only pvt_v2_b0 swin_v1_t

    # real upload: trained weights (training output folders) + evaluation results for every size
    birefnet-hf publish --repo-prefix my-org/birefnet- \\
        --weights-dir 'runs/{size}/final' --eval-results 'eval/{size}.json' [--private] [--create-pr]

    # one size from an authors' checkpoint, to an explicit repository
    birefnet-hf publish --only swin_v1_l --checkpoint swin_v1_l=BiRefNet-DIS-epoch_590.pth \\
        --eval-results swin_v1_l=eval/swin_v1_l.json --repo-id swin_v1_l=my-org/BiRefNet-DIS

    # released families (hub_configs/families/<name>/), converted from the authors' checkpoints: a .pth/.safetensors
    # file or a local folder in the authors' Hub layout (config.json without model_type + model.safetensors)
    birefnet-hf publish --family BiRefNet_HR --checkpoint BiRefNet_HR=downloads/BiRefNet_HR \\
        --dry-run --output-dir publish-dry-run
    birefnet-hf publish --all-families --checkpoint 'downloads/{family}' --repo-prefix my-org/ \\
        --allow-missing-eval-results

Per-size options take ``SIZE=VALUE`` (repeatable) or a pattern containing ``{size}`` for every selected size
(explicit entries win over a pattern); with ``--family`` / ``--all-families`` they take ``NAME=VALUE`` or a
``{family}`` pattern. A family is published under its own licence only (``--license`` may only repeat it: RMBG-2.0
stays CC BY-NC 4.0, see :func:`birefnet_hf.families.check_publish_license`), with its card (use, licence, native size,
the authors' figures labelled as quotes) and a ``preprocessor_config.json`` at its native size, so that
``AutoImageProcessor.from_pretrained`` works on the published repository directly (the authors' repositories have
none). A gated family's new repository is gated too (``gated="auto"``) before its files are uploaded. The configuration, the image processor settings and the facts of the card come
from ``hub_configs/<size>/`` (see :mod:`birefnet_hf.hub_configs`, ``--hub-configs``).

Work happens in three phases, so that nothing is uploaded unless every selected size is ready:

1. **validate** everything for all sizes: options, repository ids (``owner/name``), the Hub token, evaluation JSON
   files, output folders, and that the weights fit the published configuration (tensor names and shapes, read from
   the safetensors headers or the converted checkpoint, against the model built on the ``meta`` device);
2. **build** each folder in a staging directory, check (by default) that it loads with ``trust_remote_code=True`` in a
   fresh Python process that cannot import ``birefnet_hf`` and reproduces this package's logits, then move it into
   place atomically;
3. **upload** (skipped by ``--dry-run``): ``HfApi.create_repo(exist_ok=True)`` and ``HfApi.create_commit`` with every
   file of the folder: one commit per repository (optionally as a pull request).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers.utils import logging

from .configuration_birefnet import BiRefNetConfig
from .hub_configs import ALL_SIZES, FAMILIES_FOLDER, HUB_SIZES, load_hub_config_folder
from .model_card import DEFAULT_DATASET_ID, EvalReport, WeightsSource, build_model_card, load_eval_results

logger = logging.get_logger(__name__)

#: Configuration fields that decide the architecture (and so the weights); a training folder whose config differs
#: from the published one in any of these is rejected.
ARCHITECTURE_FIELDS = (
    "backbone",
    "multi_scale_input",
    "context_feature_fusion_levels",
    "squeeze_block_type",
    "squeeze_block_count",
    "decoder_block_type",
    "decoder_attention",
    "deformable_kernel_sizes",
    "decoder_inter_channels",
    "inward_reference",
    "inward_reference_patch_split",
    "outward_reference",
    "multi_stage_supervision",
    "use_batch_norm",
)

#: Prefix of the auxiliary classifier's tensors (training only; dropped when the published config has none).
CLASSIFIER_PREFIX = "localization.classifier."

#: Side of the images used by the remote-code check (small: the check is about loading, not accuracy).
CHECK_SIZE = 64


class PublishError(ValueError):
    """A problem with the publish options or inputs, reported before anything is uploaded."""


@dataclass
class SizePlan:
    """Everything needed to publish one backbone size."""

    size: str
    hub_folder: Path
    weights: WeightsSource
    eval_results: EvalReport | None
    repo_id: str | None
    family: str | None = None  #: the released family (``size`` is then the family's name)


# ------------------------------------------------------------------------------------------ option parsing
def _default_hub_configs() -> Path:
    return Path(__file__).resolve().parent.parent / "hub_configs"


def _parse_per_size(
    values: list[str] | None,
    option: str,
    sizes: list[str],
    known: tuple[str, ...] = ALL_SIZES,
    placeholder: str = "{size}",
) -> dict[str, str]:
    """``SIZE=VALUE`` entries and ``{size}`` patterns -> ``{size: value}`` for the selected sizes (for families:
    ``NAME=VALUE`` and ``{family}``, with ``known`` the family names)."""
    explicit: dict[str, str] = {}
    patterns: list[str] = []
    what = "NAME" if placeholder == "{family}" else "SIZE"
    for value in values or []:
        name, separator, rest = value.partition("=")
        if separator and name in known:
            if name in explicit:
                raise PublishError(f"{option}: {name} is given twice ({explicit[name]!r} and {rest!r}).")
            if not rest:
                raise PublishError(f"{option} {value!r}: empty value for {name}.")
            explicit[name] = rest
        elif placeholder in value:
            patterns.append(value)
        else:
            raise PublishError(
                f"{option} {value!r}: expected {what}=VALUE with {what} one of {', '.join(known)}, "
                f"or a pattern containing {placeholder}."
            )
    if len(patterns) > 1:
        raise PublishError(f"{option}: more than one {placeholder} pattern ({', '.join(patterns)}).")
    unselected = sorted(set(explicit) - set(sizes))
    if unselected:
        raise PublishError(
            f"{option} is given for {', '.join(unselected)}, which is not being published (selected: {', '.join(sizes)})."
        )
    mapping = {size: patterns[0].replace(placeholder, size) for size in sizes} if patterns else {}
    mapping.update(explicit)
    return mapping


def _check_repo_id(repo_id: str, where: str) -> str:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    owner, separator, name = repo_id.partition("/")
    if not separator or not owner or not name:
        raise PublishError(
            f"{where}: repository id {repo_id!r} has no owner; use OWNER/NAME (e.g. --repo-prefix my-org/birefnet- "
            "or --repo-id SIZE=my-org/NAME)."
        )
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise PublishError(f"{where}: invalid repository id {repo_id!r}: {error}") from error
    return repo_id


def _resolve_repo_ids(
    args: argparse.Namespace, sizes: list[str], known: tuple[str, ...] = ALL_SIZES, placeholder: str = "{size}"
) -> dict[str, str]:
    explicit = _parse_per_size(args.repo_id, "--repo-id", sizes, known, placeholder)
    repo_ids = {}
    for size in sizes:
        if size in explicit:
            repo_ids[size] = _check_repo_id(explicit[size], f"--repo-id {size}")
        elif args.repo_prefix:
            repo_ids[size] = _check_repo_id(args.repo_prefix + size, "--repo-prefix")
    seen: dict[str, str] = {}
    for size, repo_id in repo_ids.items():
        if repo_id in seen:
            raise PublishError(f"{size} and {seen[repo_id]} would both be published to {repo_id}.")
        seen[repo_id] = size
    return repo_ids


def _resolve_token(args: argparse.Namespace) -> str:
    from huggingface_hub import constants, get_token

    if constants.is_offline_mode():
        raise PublishError(
            "HF_HUB_OFFLINE is set: uploading needs the network. Unset HF_HUB_OFFLINE, or use --dry-run."
        )
    token = args.token or get_token()
    if not token:
        raise PublishError(
            "no Hugging Face token: pass --token, set HF_TOKEN, or run `hf auth login` (a token with write access "
            "to the target repositories). Use --dry-run to build the folders without uploading."
        )
    return token


# ------------------------------------------------------------------------------------------------ weights
def _meta_state_shapes(config: BiRefNetConfig) -> dict[str, tuple[int, ...]]:
    from .modeling_birefnet import BiRefNetForImageSegmentation

    with torch.device("meta"):
        model = BiRefNetForImageSegmentation(config)
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def _weights_files(folder: Path, where: str) -> list[Path]:
    """The safetensors files of a ``save_pretrained`` folder (single file or shards)."""
    if not folder.is_dir():
        raise PublishError(
            f"{where}: {folder} is not a folder (expected a save_pretrained / training output folder)."
        )
    single = folder / "model.safetensors"
    if single.is_file():
        return [single]
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise PublishError(f"{where}: {index} is not a safetensors index: {error}") from error
        files = [folder / name for name in sorted(set(weight_map.values()))]
        missing = [str(path) for path in files if not path.is_file()]
        if missing:
            raise PublishError(f"{where}: shards listed in {index} are missing: {', '.join(missing)}")
        return files
    raise PublishError(f"{where}: no model.safetensors (or model.safetensors.index.json) in {folder}.")


def _compare_tensors(
    found: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]], where: str, size: str
) -> None:
    missing = [key for key in expected if key not in found]
    unexpected = [key for key in found if key not in expected]
    mismatched = [
        f"{key}: weights {found[key]} vs model {expected[key]}"
        for key in expected
        if key in found and tuple(found[key]) != tuple(expected[key])
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensor(s): " + ", ".join(missing[:10]))
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s): " + ", ".join(unexpected[:10]))
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): " + "; ".join(mismatched[:10]))
    if problems:
        raise PublishError(
            f"{where}: the weights do not match the published {size} config: " + " | ".join(problems)
        )


def _training_folder_config_problems(folder: Path, config: BiRefNetConfig) -> tuple[list[str], bool]:
    """Architecture differences between a training folder's ``config.json`` and the published config, and whether
    the folder's model has the (training-only) auxiliary classifier."""
    path = folder / "config.json"
    if not path.is_file():
        return [], False
    try:
        trained = BiRefNetConfig.from_json_file(str(path))
    except (ValueError, TypeError, json.JSONDecodeError) as error:
        raise PublishError(f"{path} is not a BiRefNet config: {error}") from error
    problems = [
        f"{name}: {getattr(trained, name)!r} (weights) vs {getattr(config, name)!r} (published)"
        for name in ARCHITECTURE_FIELDS
        if getattr(trained, name) != getattr(config, name)
    ]
    return problems, bool(trained.auxiliary_classification) and not config.auxiliary_classification


def _read_training_shapes(folder: Path, where: str) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    shapes = {}
    for path in _weights_files(folder, where):
        try:
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():
                    shapes[key] = tuple(handle.get_slice(key).get_shape())
        except Exception as error:  # safetensors raises its own error types for corrupt headers
            raise PublishError(f"{where}: cannot read {path}: {error}") from error
    return shapes


def _load_training_state(folder: Path, where: str, drop_classifier: bool) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for path in _weights_files(folder, where):
        state.update(load_file(str(path)))
    if drop_classifier:
        state = {key: value for key, value in state.items() if not key.startswith(CLASSIFIER_PREFIX)}
    return state


def authors_checkpoint_file(path: str | os.PathLike, where: str) -> Path:
    """The weights file of an authors' checkpoint: ``path`` itself (``.pth`` / ``.safetensors``), or the
    ``model.safetensors`` of a folder in the authors' Hub layout (``config.json`` without ``model_type``, pointing
    ``auto_map`` at ``birefnet.BiRefNet``: a local copy of e.g. ``ZhengPeng7/BiRefNet_HR``)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise PublishError(f"{where}: {path} not found.")
    config_path, weights = path / "config.json", path / "model.safetensors"
    if not config_path.is_file() or not weights.is_file():
        raise PublishError(
            f"{where}: {path} is not a folder in the authors' layout: it needs config.json and model.safetensors "
            f"(found: {', '.join(sorted(p.name for p in path.iterdir())) or 'nothing'})."
        )
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PublishError(f"{where}: {config_path} is not a JSON file: {error}") from error
    if not isinstance(raw, dict):
        raise PublishError(f"{where}: {config_path} does not hold a JSON object.")
    auto_model = (raw.get("auto_map") or {}).get("AutoModelForImageSegmentation", "")
    if "model_type" in raw or not (auto_model.endswith(".BiRefNet") or raw.get("architectures") == ["BiRefNet"]):
        raise PublishError(
            f"{where}: {config_path} is not an authors' BiRefNet config (it has model_type "
            f"{raw.get('model_type')!r}; the authors' config has none and points auto_map at birefnet.BiRefNet). "
            "An already converted folder is published with --weights-dir."
        )
    return weights


def _convert_authors_checkpoint(
    path: Path, config: BiRefNetConfig, expected, where: str
) -> dict[str, torch.Tensor]:
    from .convert_birefnet_original_to_hf import convert_state_dict, infer_backbone, load_original_state_dict
    from .families import refuse_pre_2024_layout

    path = authors_checkpoint_file(path, where)
    try:
        original = load_original_state_dict(path)
    except (OSError, ValueError) as error:
        raise PublishError(f"{where}: {error}") from error
    try:
        refuse_pre_2024_layout(original)
        detected = infer_backbone(original)
    except ValueError as error:
        raise PublishError(
            f"{where}: {path} is not a BiRefNet checkpoint of a published size: {error}"
        ) from error
    if detected != config.backbone:
        raise PublishError(f"{where}: {path} holds a {detected} model, not {config.backbone}.")
    try:
        return convert_state_dict(original, config, expected)
    except ValueError as error:
        raise PublishError(f"{where}: {error}") from error


def check_family_card(name: str, card: dict[str, Any], hub_folder: Path) -> None:
    """Refuse a family's ``card.yaml`` that describes another family or another licence than the family's own
    (e.g. RMBG-2.0 under MIT): a family is only ever published under its licence."""
    from .families import check_publish_license

    if card.get("family") != name:
        raise PublishError(
            f"{hub_folder / 'card.yaml'} describes {card.get('family')!r}, not the family {name}; regenerate the hub "
            "configs with `python -m birefnet_hf.hub_configs`."
        )
    try:
        check_publish_license(name, str(card["license"]))
    except ValueError as error:
        raise PublishError(f"{hub_folder / 'card.yaml'}: {error}") from error


def validate_weights(plan: SizePlan, config: BiRefNetConfig) -> None:
    """Check, without building the real model, that ``plan``'s weights fit ``config`` (names and shapes)."""
    source = plan.weights
    if source.kind == "random":
        return
    where = f"{'--weights-dir' if source.kind == 'trained' else '--checkpoint'} {plan.size}"
    expected = _meta_state_shapes(config)
    if source.kind == "trained":
        folder = Path(source.path)
        problems, has_classifier = _training_folder_config_problems(folder, config)
        if problems:
            raise PublishError(
                f"{where}: {folder / 'config.json'} describes another architecture than the published {plan.size} "
                "config: " + "; ".join(problems)
            )
        found = _read_training_shapes(folder, where)
        if has_classifier:
            found = {key: shape for key, shape in found.items() if not key.startswith(CLASSIFIER_PREFIX)}
        _compare_tensors(found, expected, where, plan.size)
    else:
        from .modeling_birefnet import BiRefNetForImageSegmentation

        with torch.device("meta"):
            meta_state = BiRefNetForImageSegmentation(config).state_dict()
        _convert_authors_checkpoint(Path(source.path), config, meta_state, where)


def load_model(plan: SizePlan, config: BiRefNetConfig, seed: int = 0):
    """The model to publish for ``plan`` (eval mode), with its weights loaded strictly."""
    from .modeling_birefnet import BiRefNetForImageSegmentation

    source = plan.weights
    if source.kind == "random":
        torch.manual_seed(seed)
        return BiRefNetForImageSegmentation(config).eval()
    model = BiRefNetForImageSegmentation(config)
    if source.kind == "trained":
        where = f"--weights-dir {plan.size}"
        _, has_classifier = _training_folder_config_problems(Path(source.path), config)
        state = _load_training_state(Path(source.path), where, drop_classifier=has_classifier)
        if has_classifier:
            logger.info(
                f"{plan.size}: dropping the auxiliary classifier (training only) from the published weights."
            )
    else:
        state = _convert_authors_checkpoint(
            Path(source.path), config, model.state_dict(), f"--checkpoint {plan.size}"
        )
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    _compare_tensors(
        {key: tuple(value.shape) for key, value in state.items()}, expected, str(source.path), plan.size
    )
    model.load_state_dict(state, strict=True)
    return model.eval()


# ---------------------------------------------------------------------------------------------- the folders
@contextlib.contextmanager
def _registered_for_auto_classes(model, image_processor) -> Iterator[None]:
    """Register the model, config and processor classes for the Auto classes while saving (so that
    ``save_pretrained`` copies the code and writes ``auto_map``), then restore the classes as they were."""
    registrations = (
        (type(model), "AutoModelForImageSegmentation"),
        (type(model.config), "AutoConfig"),
        (type(image_processor), "AutoImageProcessor"),
    )
    missing = object()
    previous = [(cls, cls.__dict__.get("_auto_class", missing)) for cls, _ in registrations]
    try:
        for cls, auto_class in registrations:
            cls.register_for_auto_class(auto_class)
        yield
    finally:
        for cls, value in previous:
            if value is missing:
                with contextlib.suppress(AttributeError):
                    delattr(cls, "_auto_class")
            else:
                cls._auto_class = value


def save_model_folder(model, image_processor, card, folder: Path) -> None:
    """Write the Hub folder: weights + config (with ``auto_map``), processor config, model code, ``README.md``."""
    model.config.architectures = ["BiRefNetForImageSegmentation"]
    with _registered_for_auto_classes(model, image_processor):
        model.save_pretrained(folder)
        image_processor.save_pretrained(folder)
    card.save(folder / "README.md")


# The fresh-process check: block `birefnet_hf`, load the folder with trust_remote_code, run model + pipeline.
_REMOTE_CODE_CHECK = r"""
import importlib.abc, json, sys

class _BlockBirefnetHf(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "birefnet_hf" or name.startswith("birefnet_hf."):
            raise ImportError("birefnet_hf is blocked in the remote-code check")
        return None

sys.meta_path.insert(0, _BlockBirefnetHf())
folder, out_dir, side = sys.argv[1], sys.argv[2], int(sys.argv[3])

import numpy as np
import PIL.Image
import torch
from transformers import AutoImageProcessor, AutoModelForImageSegmentation, pipeline

torch.set_num_threads(2)
model = AutoModelForImageSegmentation.from_pretrained(folder, trust_remote_code=True).eval()
processor = AutoImageProcessor.from_pretrained(folder, trust_remote_code=True, size={"height": side, "width": side})
image = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (side + 7, side - 5, 3), dtype=np.uint8))
inputs = processor(images=image, return_tensors="pt")
with torch.no_grad():
    logits = model(**inputs).logits
np.save(f"{out_dir}/pixel_values.npy", inputs["pixel_values"].numpy())
np.save(f"{out_dir}/logits.npy", logits.numpy())
segmenter = pipeline("image-segmentation", model=model, image_processor=processor)
segments = segmenter(image)
print(json.dumps({
    "model_class": type(model).__module__ + "." + type(model).__qualname__,
    "processor_class": type(processor).__module__ + "." + type(processor).__qualname__,
    "labels": [segment["label"] for segment in segments],
    "mask_sizes": [list(segment["mask"].size) for segment in segments],
    "birefnet_hf_loaded": any(name.split(".")[0] == "birefnet_hf" for name in sys.modules),
}))
"""


def check_remote_code(
    folder: str | os.PathLike, reference_model=None, timeout: float = 600.0
) -> dict[str, Any]:
    """Load ``folder`` with ``trust_remote_code=True`` in a fresh Python process that cannot import ``birefnet_hf``
    (an import blocker, isolated mode, an empty working directory, a temporary ``HF_MODULES_CACHE``, offline), run the
    model on a small image and the ``image-segmentation`` pipeline on it.

    With ``reference_model``, the logits of the remote code must match the reference's on the same pixel values.
    Returns the child's report (class names, pipeline labels). Raises ``RuntimeError`` with the child's output when
    anything fails.
    """
    import numpy as np

    folder = Path(folder).resolve()
    with tempfile.TemporaryDirectory(prefix="birefnet-remote-check-") as scratch:
        scratch = Path(scratch)
        (scratch / "cwd").mkdir()
        env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
        env.update(
            HF_MODULES_CACHE=str(scratch / "modules"), HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error"
        )
        command = [sys.executable, "-I", "-c", _REMOTE_CODE_CHECK, str(folder), str(scratch), str(CHECK_SIZE)]
        try:
            result = subprocess.run(
                command,
                cwd=scratch / "cwd",
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise RuntimeError(
                f"{folder}: the trust_remote_code check did not finish within {timeout:.0f} s."
            ) from error
        if result.returncode != 0:
            raise RuntimeError(
                f"{folder} does not load with trust_remote_code in a fresh process:\n{result.stderr[-4000:]}"
            )
        report = json.loads(result.stdout.strip().splitlines()[-1])
        if report["birefnet_hf_loaded"] or not report["model_class"].startswith("transformers_modules."):
            raise RuntimeError(f"{folder}: the remote-code check did not use the folder's code: {report}")
        image_size = [CHECK_SIZE - 5, CHECK_SIZE + 7]  # (width, height) of the check image
        if not report["labels"] or any(size != image_size for size in report["mask_sizes"]):
            raise RuntimeError(
                f"{folder}: the image-segmentation pipeline returned unexpected masks: {report}"
            )
        if reference_model is not None:
            pixel_values = torch.from_numpy(np.load(scratch / "pixel_values.npy"))
            remote_logits = torch.from_numpy(np.load(scratch / "logits.npy"))
            with torch.no_grad():
                local_logits = reference_model(pixel_values).logits
            if not torch.allclose(remote_logits, local_logits, atol=1e-4, rtol=1e-4):
                difference = (remote_logits - local_logits).abs().max().item()
                raise RuntimeError(
                    f"{folder}: the remote code's logits differ from birefnet_hf's (max abs difference {difference:.3g})."
                )
    return report


def _replace_folder(staging: Path, destination: Path) -> None:
    """Move ``staging`` to ``destination`` (replacing an existing folder) without leaving a half-written folder."""
    if destination.exists():
        backup = destination.with_name(f".{destination.name}.old-{os.getpid()}")
        os.replace(destination, backup)
        try:
            os.replace(staging, destination)
        except BaseException:
            os.replace(backup, destination)
            raise
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.replace(staging, destination)


def build_folder(
    plan: SizePlan,
    destination: Path,
    dataset_id: str = DEFAULT_DATASET_ID,
    remote_code_check: bool = True,
    seed: int = 0,
    onnx: bool = False,
) -> Path:
    """Build ``plan``'s Hub folder at ``destination`` (atomically: staged next to it, then renamed). With ``onnx``,
    also ``onnx/model.onnx`` and ``onnx/model_fp16.onnx`` (validated exports, the layout transformers.js reads)."""
    from .image_processing_birefnet import BiRefNetImageProcessor

    hub = load_hub_config_folder(plan.hub_folder)
    config, card_facts = hub["config"], hub["card"]
    if plan.family is not None:
        check_family_card(plan.family, card_facts, plan.hub_folder)
    model = load_model(plan, config, seed=seed)
    parameters = sum(parameter.numel() for parameter in model.parameters())
    if parameters != card_facts["parameters"]:
        raise PublishError(
            f"{plan.hub_folder / 'card.yaml'} says {card_facts['parameters']} parameters but the model has {parameters}: "
            "the hub configs are out of date; regenerate them with `python -m birefnet_hf.hub_configs`."
        )
    image_processor = BiRefNetImageProcessor.from_pretrained(str(plan.hub_folder))
    card = build_model_card(card_facts, plan.repo_id, plan.weights, plan.eval_results, dataset_id=dataset_id)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = destination.parent / f".{destination.name}.staging-{uuid.uuid4().hex[:12]}"
    staging.mkdir()  # (not mkdtemp: the published folder gets the usual permissions)
    try:
        save_model_folder(model, image_processor, card, staging)
        if remote_code_check:
            check_remote_code(staging, reference_model=model)
        if onnx:
            from .onnx_export import export_onnx_folder

            export_onnx_folder(model, image_processor, staging / "onnx")
        _replace_folder(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return destination


# ------------------------------------------------------------------------------------------------- upload
def upload_folder(
    folder: Path,
    repo_id: str,
    token: str,
    private: bool,
    create_pr: bool,
    commit_message: str,
    gated: bool = False,
):
    """Create the repository if needed and upload every file of ``folder`` in **one** commit (``create_commit``;
    ``HfApi.upload_folder`` may split large folders into several commits). With ``gated`` (a gated family such as
    RMBG-2.0) the repository is gated (``gated="auto"``) before any file is uploaded. Returns the ``CommitInfo``."""
    from huggingface_hub import CommitOperationAdd, HfApi

    operations = [
        CommitOperationAdd(path_in_repo=path.relative_to(folder).as_posix(), path_or_fileobj=str(path))
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    ]
    api = HfApi(token=token)
    # private=None (not False) when not asked: a new repository then follows the owner's default visibility
    api.create_repo(repo_id, repo_type="model", private=True if private else None, exist_ok=True)
    if gated:
        api.update_repo_settings(repo_id, gated="auto", repo_type="model")
    return api.create_commit(
        repo_id=repo_id,
        repo_type="model",
        operations=operations,
        commit_message=commit_message,
        create_pr=create_pr,
    )


# ---------------------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="birefnet-hf publish",
        description="Build Hub folders (model, image processor, remote code, model card) for BiRefNet backbone sizes "
        "and push them to the Hugging Face Hub. Nothing is uploaded unless every selected size validates.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="SIZE is one of: "
        + ", ".join(HUB_SIZES)
        + ". Per-size options take SIZE=VALUE (repeatable) or a "
        "pattern containing {size}, e.g. --weights-dir 'runs/{size}/final'.",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=ALL_SIZES,
        metavar="SIZE",
        help=f"publish only these sizes (default: the {len(HUB_SIZES)} sizes {', '.join(HUB_SIZES)})",
    )
    families = parser.add_argument_group(
        "released families (hub_configs/families/<name>/; per-family options take NAME=VALUE or a {family} pattern)"
    )
    families.add_argument(
        "--family",
        nargs="+",
        metavar="NAME",
        help="publish these released families (e.g. BiRefNet_HR, briaai/RMBG-2.0), converted from --checkpoint",
    )
    families.add_argument("--all-families", action="store_true", help="publish every released family")
    families.add_argument(
        "--license",
        help="licence to publish under; only the family's own is accepted (RMBG-2.0: cc-by-nc-4.0; the others: mit)",
    )
    source = parser.add_argument_group("weights (one source per size)")
    source.add_argument(
        "--weights-dir", action="append", metavar="SIZE=PATH", help="training output / save_pretrained folder"
    )
    source.add_argument(
        "--checkpoint",
        action="append",
        metavar="SIZE=PATH",
        help="authors' checkpoint (.pth / .safetensors, or a folder in the authors' Hub layout)",
    )
    source.add_argument(
        "--random-init",
        action="store_true",
        help="random weights for sizes without a source (needs --dry-run)",
    )
    source.add_argument("--seed", type=int, default=0, help="seed of --random-init (default 0)")
    card = parser.add_argument_group("model card")
    card.add_argument(
        "--eval-results", action="append", metavar="SIZE=PATH", help="JSON written by examples/evaluate.py"
    )
    card.add_argument(
        "--allow-missing-eval-results",
        action="store_true",
        help="upload sizes without --eval-results (card says so)",
    )
    card.add_argument(
        "--dataset-id",
        default=DEFAULT_DATASET_ID,
        help=f"datasets entry / model-index dataset (default {DEFAULT_DATASET_ID})",
    )
    card.add_argument(
        "--hub-configs",
        type=Path,
        default=None,
        help="folder of hub_configs/<size>/ (default: the repository's)",
    )
    hub = parser.add_argument_group("Hub")
    hub.add_argument(
        "--repo-prefix", help="repository id prefix, e.g. my-org/birefnet- (repo = prefix + size)"
    )
    hub.add_argument(
        "--repo-id",
        action="append",
        metavar="SIZE=OWNER/NAME",
        help="repository of one size (wins over --repo-prefix)",
    )
    hub.add_argument("--token", help="Hub token with write access (default: HF_TOKEN / the saved login)")
    hub.add_argument("--private", action="store_true", help="create new repositories as private")
    hub.add_argument(
        "--create-pr", action="store_true", help="open a pull request instead of committing to main"
    )
    hub.add_argument(
        "--commit-message", default=None, help="commit message (default: 'Upload BiRefNet <size>')"
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--dry-run", action="store_true", help="build the folders under --output-dir, upload nothing"
    )
    output.add_argument(
        "--output-dir", type=Path, help="keep the built folders here (<dir>/<size>); needed with --dry-run"
    )
    output.add_argument(
        "--overwrite", action="store_true", help="replace existing folders under --output-dir"
    )
    output.add_argument(
        "--check-remote-code",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="load each folder with trust_remote_code in a fresh process without birefnet_hf (default: on)",
    )
    output.add_argument(
        "--onnx",
        action="store_true",
        help="add onnx/model.onnx and onnx/model_fp16.onnx (birefnet-hf export onnx, validated; transformers.js "
        "layout)",
    )
    parser.add_argument(
        "--write-hub-configs",
        type=Path,
        metavar="DIR",
        help="only (re)write DIR/<size>/ (and DIR/families/<name>/ with --family / --all-families) from code and exit",
    )
    return parser


def _eval_results_and_repo_checks(key: str, eval_paths: dict, repo_ids: dict, args, problems: list[str]):
    """The evaluation report of one size or family (``None`` without one) and the problems with its
    ``--eval-results`` and repository id, appended to ``problems``."""
    report = None
    if key in eval_paths:
        try:
            report = load_eval_results(eval_paths[key])
        except (FileNotFoundError, ValueError) as error:
            problems.append(f"--eval-results {key}: {error}")
    elif not args.dry_run and not args.allow_missing_eval_results:
        problems.append(
            f"{key}: no --eval-results (the model card's results come from examples/evaluate.py); "
            "pass --allow-missing-eval-results to upload without them."
        )
    if not args.dry_run and key not in repo_ids:
        problems.append(f"{key}: no repository id; pass --repo-prefix OWNER/PREFIX or --repo-id {key}=OWNER/NAME.")
    return report


def plan_publication(args: argparse.Namespace) -> tuple[list[SizePlan], str | None]:
    """Phase 1 (except the weights check): turn the options into one :class:`SizePlan` per size, or raise
    :class:`PublishError` naming the option at fault. Returns the plans and the Hub token (``None`` for dry runs)."""
    if args.family or args.all_families:
        return _plan_families(args)
    if args.license is not None and args.license.lower() != "mit":
        raise PublishError(f"--license {args.license!r}: the backbone sizes are published under their licence, mit.")
    sizes = list(dict.fromkeys(args.only or HUB_SIZES))
    if args.random_init and not args.dry_run:
        raise PublishError(
            "--random-init is for dry runs only (random weights must never be published): add --dry-run."
        )
    if args.dry_run and args.output_dir is None:
        raise PublishError("--dry-run needs --output-dir (where the folders are left for inspection).")

    hub_root = args.hub_configs if args.hub_configs is not None else _default_hub_configs()
    if not hub_root.is_dir():
        raise PublishError(
            f"hub configs folder {hub_root} not found: pass --hub-configs, or generate it with "
            f"`python -m birefnet_hf.hub_configs --output-dir {hub_root}`."
        )

    weights_dirs = _parse_per_size(args.weights_dir, "--weights-dir", sizes)
    checkpoints = _parse_per_size(args.checkpoint, "--checkpoint", sizes)
    eval_paths = _parse_per_size(args.eval_results, "--eval-results", sizes)
    repo_ids = _resolve_repo_ids(args, sizes)

    problems: list[str] = []
    plans = []
    for size in sizes:
        found = len(problems)
        weights = None
        if size in weights_dirs and size in checkpoints:
            problems.append(f"{size}: both --weights-dir and --checkpoint given; choose one.")
        elif size in weights_dirs:
            path = Path(weights_dirs[size])
            if path.is_dir():
                weights = WeightsSource("trained", str(path))
            else:
                problems.append(f"--weights-dir {size}: {path} is not a folder.")
        elif size in checkpoints:
            path = Path(checkpoints[size])
            if path.is_file():
                weights = WeightsSource("converted", str(path))
            else:
                problems.append(f"--checkpoint {size}: {path} not found.")
        elif args.random_init:
            weights = WeightsSource("random")
        else:
            problems.append(
                f"{size}: no weights (--weights-dir, --checkpoint, or --random-init for a dry run); "
                "use --only to publish a subset."
            )
        report = _eval_results_and_repo_checks(size, eval_paths, repo_ids, args, problems)
        hub_folder = hub_root / size
        try:
            load_hub_config_folder(hub_folder)
        except (FileNotFoundError, ValueError) as error:
            problems.append(str(error))
        if args.output_dir is not None:
            destination = args.output_dir / size
            if destination.exists() and any(destination.iterdir()) and not args.overwrite:
                problems.append(
                    f"{destination} exists and is not empty; pass --overwrite or choose another --output-dir."
                )
        if len(problems) == found:
            plans.append(SizePlan(size, hub_folder, weights, report, repo_ids.get(size)))
    token = None
    if not args.dry_run:
        try:
            token = _resolve_token(args)
        except PublishError as error:
            problems.append(str(error))
    if problems:
        raise PublishError("\n  ".join(["cannot publish:"] + problems))
    return plans, token


def _plan_families(args: argparse.Namespace) -> tuple[list[SizePlan], str | None]:
    """:func:`plan_publication` for ``--family`` / ``--all-families``: one plan per family, its weights converted
    from ``--checkpoint NAME=PATH`` (or random for a dry run), its folder ``hub_configs/families/<name>/``."""
    from .families import FAMILIES, check_publish_license, get_family

    if args.family and args.all_families:
        raise PublishError("--family and --all-families: give one of them.")
    if args.only:
        raise PublishError("--only selects backbone sizes; it cannot be combined with --family / --all-families.")
    if args.weights_dir:
        raise PublishError(
            "--weights-dir is not used with --family: a released family is converted from the authors' checkpoint "
            "(--checkpoint NAME=FILE or NAME=FOLDER in the authors' layout)."
        )
    if args.random_init and not args.dry_run:
        raise PublishError(
            "--random-init is for dry runs only (random weights must never be published): add --dry-run."
        )
    if args.dry_run and args.output_dir is None:
        raise PublishError("--dry-run needs --output-dir (where the folders are left for inspection).")
    names = []
    for name in args.family or list(FAMILIES):
        try:
            names.append(get_family(name).name)
        except ValueError as error:
            raise PublishError(f"--family: {error}") from error
    names = list(dict.fromkeys(names))
    known = tuple(FAMILIES)

    hub_root = args.hub_configs if args.hub_configs is not None else _default_hub_configs()
    if not hub_root.is_dir():
        raise PublishError(
            f"hub configs folder {hub_root} not found: pass --hub-configs, or generate it with "
            f"`python -m birefnet_hf.hub_configs --output-dir {hub_root}`."
        )
    checkpoints = _parse_per_size(args.checkpoint, "--checkpoint", names, known, "{family}")
    eval_paths = _parse_per_size(args.eval_results, "--eval-results", names, known, "{family}")
    repo_ids = _resolve_repo_ids(args, names, known, "{family}")

    problems: list[str] = []
    plans = []
    for name in names:
        found = len(problems)
        try:
            check_publish_license(name, args.license)
        except ValueError as error:
            problems.append(f"--license: {error}")
        weights = None
        if name in checkpoints:
            path = Path(checkpoints[name])
            if path.is_file() or path.is_dir():
                weights = WeightsSource("converted", str(path))
            else:
                problems.append(f"--checkpoint {name}: {path} not found.")
        elif args.random_init:
            weights = WeightsSource("random")
        else:
            problems.append(
                f"{name}: no weights (--checkpoint {name}=FILE_OR_AUTHORS_FOLDER, a {{family}} pattern, or "
                "--random-init for a dry run); use --family to publish a subset."
            )
        report = _eval_results_and_repo_checks(name, eval_paths, repo_ids, args, problems)
        hub_folder = hub_root / FAMILIES_FOLDER / name
        try:
            check_family_card(name, load_hub_config_folder(hub_folder)["card"], hub_folder)
        except (FileNotFoundError, ValueError) as error:
            problems.append(str(error))
        if args.output_dir is not None:
            destination = args.output_dir / name
            if destination.exists() and any(destination.iterdir()) and not args.overwrite:
                problems.append(
                    f"{destination} exists and is not empty; pass --overwrite or choose another --output-dir."
                )
        if len(problems) == found:
            plans.append(SizePlan(name, hub_folder, weights, report, repo_ids.get(name), family=name))
    token = None
    if not args.dry_run:
        try:
            token = _resolve_token(args)
        except PublishError as error:
            problems.append(str(error))
    if problems:
        raise PublishError("\n  ".join(["cannot publish:"] + problems))
    return plans, token


def publish(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run the three phases; returns one summary dict per size (folder, repo id, commit / PR url)."""
    from tqdm.auto import tqdm

    plans, token = plan_publication(args)
    problems = []
    for plan in tqdm(plans, desc="validate weights", unit="size"):
        try:
            validate_weights(plan, load_hub_config_folder(plan.hub_folder)["config"])
        except PublishError as error:
            problems.append(str(error))
    if problems:
        raise PublishError("\n  ".join(["cannot publish:"] + problems))

    with contextlib.ExitStack() as stack:
        if args.output_dir is not None:
            root = Path(args.output_dir)
        else:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="birefnet-publish-")))
        folders = {}
        for plan in tqdm(plans, desc="build folders", unit="size"):
            folders[plan.size] = build_folder(
                plan,
                root / plan.size,
                dataset_id=args.dataset_id,
                remote_code_check=args.check_remote_code,
                seed=args.seed,
                onnx=args.onnx,
            )
            logger.info(f"{plan.size}: built {folders[plan.size]}")

        summary = [
            {"size": plan.size, "folder": str(folders[plan.size]), "repo_id": plan.repo_id} for plan in plans
        ]
        if args.dry_run:
            return summary
        for plan, entry in zip(tqdm(plans, desc="upload", unit="repo"), summary, strict=True):
            gated = False
            if plan.family is not None:
                from .families import get_family

                family = get_family(plan.family)
                gated = family.gated
                default_message = f"Upload {family.name} (BiRefNet, converted from {family.hub_id})"
            else:
                default_message = f"Upload BiRefNet {plan.size}"
            info = upload_folder(
                folders[plan.size],
                plan.repo_id,
                token,
                args.private,
                args.create_pr,
                args.commit_message or default_message,
                gated=gated,
            )
            entry["commit_url"] = info.commit_url
            entry["pr_url"] = info.pr_url
            logger.info(f"{plan.size}: uploaded to {plan.repo_id} ({info.pr_url or info.commit_url})")
            if args.output_dir is None:
                entry["folder"] = None  # the staging folder is deleted with the temporary directory
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.write_hub_configs is not None:
        from .families import FAMILIES, get_family
        from .hub_configs import write_hub_configs

        try:
            families = list(FAMILIES) if args.all_families else [get_family(name).name for name in args.family or []]
        except ValueError as error:
            parser.error(f"--family: {error}")
        written = write_hub_configs(args.write_hub_configs, args.only or ([] if families else HUB_SIZES), families)
        print(f"wrote {len(written)} files under {args.write_hub_configs}")
        return 0
    try:
        summary = publish(args)
    except (PublishError, FileNotFoundError, FileExistsError) as error:
        print(f"birefnet-hf publish: error: {error}", file=sys.stderr)
        return 2
    for entry in summary:
        target = entry.get("pr_url") or entry.get("commit_url") or "(dry run: not uploaded)"
        print(f"{entry['size']}: {entry['folder'] or ''} -> {entry['repo_id'] or '-'} {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
