# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Model cards (``README.md``) of the published BiRefNet models.

:func:`build_model_card` turns the facts of ``hub_configs/<size>/card.yaml`` (see :mod:`birefnet_hf.hub_configs`),
the evaluation results written by ``examples/evaluate_dis.py`` (:func:`load_eval_results`) and the provenance of the
weights into a :class:`huggingface_hub.ModelCard`:

* YAML metadata built with :class:`huggingface_hub.ModelCardData`: ``license``, ``library_name: transformers``,
  ``pipeline_tag: image-segmentation``, ``tags``, ``datasets``, ``metrics`` and a ``model-index`` whose results are
  *only* the numbers read from the evaluation JSON (never typed in);
* a body with the description, usage with and without this package, the provenance of the weights, training data,
  the evaluation table, the numbers the paper reports for this size (in a separate, labelled table), intended use,
  limitations, licence and citation.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .metrics.table import DIS_METRICS, get_metric

#: Metric keys of ``examples/evaluate_dis.py`` / :class:`birefnet_hf.metrics.DISMetrics`, in table order, with the
#: model-index ``type`` and the display name of each (from the package's one metric table, ``metrics/table.py``).
METRICS: dict[str, tuple[str, str]] = {
    metric.key: (metric.model_index_type, metric.name) for metric in DIS_METRICS
}

#: Default ``datasets`` entry and model-index dataset type.
DEFAULT_DATASET_ID = "DIS5K"

TASK_NAME = "Dichotomous Image Segmentation"


@dataclass
class EvalReport:
    """Evaluation results of one model, as read from ``examples/evaluate_dis.py``'s JSON."""

    path: str
    sets: dict[str, dict[str, float]]
    model: str | None = None
    resolution: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class WeightsSource:
    """Where the published weights come from: ``kind`` is ``"trained"`` (a training output folder),
    ``"converted"`` (an authors' checkpoint) or ``"random"`` (random initialisation, dry runs only)."""

    kind: str
    path: str | None = None

    def describe(self) -> str:
        name = Path(self.path).name if self.path else None
        if self.kind == "trained":
            return (
                f"Trained with this package's training script (`examples/train.py`); published from the training "
                f"output folder `{name}`."
            )
        if self.kind == "converted":
            return (
                f"The authors' released weights (`{name}`), converted to this implementation with "
                "`birefnet_hf.convert_birefnet_original_to_hf` (the same tensors under this implementation's names; the "
                "package's parity tests check its outputs against the authors' code). The training data is the "
                "authors' choice for that checkpoint."
            )
        if self.kind == "random":
            return (
                "**Randomly initialised (dry run).** These weights are not trained: the predictions are "
                "meaningless. This folder only tests the publishing pipeline."
            )
        raise ValueError(f"unknown weights source kind {self.kind!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _metric_table(name: str, value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError(
            f"{where}: results of {name!r} must be an object of metric -> number, got {type(value).__name__}."
        )
    scores = {}
    for key, score in value.items():
        if key not in METRICS:
            continue
        if not _is_number(score):
            raise ValueError(f"{where}: {name}.{key} must be a finite number, got {score!r}.")
        scores[key] = float(score)
    return scores


def parse_eval_results(data: Any, where: str = "evaluation results") -> EvalReport:
    """Validate and normalise the JSON object written by ``examples/evaluate_dis.py``.

    Expected: ``{"model": ..., "resolution": ..., "sets": {set name: {metric: number}}}``; a result object at the top
    level (e.g. a ``"DIS-TE (mean)"`` summary) counts as one more set. Metric keys other than :data:`METRICS` are
    ignored. Raises ``ValueError`` naming ``where`` when no set has any known metric.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(data).__name__}.")
    raw_sets = data.get("sets")
    if raw_sets is not None and not isinstance(raw_sets, dict):
        raise ValueError(f"{where}: 'sets' must be an object of set name -> metrics.")
    candidates = dict(raw_sets or {})
    extra = {}
    for key, value in data.items():
        if key in ("sets", "model", "resolution"):
            continue
        if isinstance(value, dict) and any(metric in value for metric in METRICS):
            candidates.setdefault(key, value)
        else:
            extra[key] = value
    sets = {}
    for name, value in candidates.items():
        scores = _metric_table(name, value, where)
        if scores:
            sets[str(name)] = scores
    if not sets:
        raise ValueError(
            f"{where}: no evaluation results found (expected 'sets' of {{set: {{{', '.join(METRICS)}}}}}, "
            "as written by examples/evaluate_dis.py)."
        )
    model = data.get("model")
    return EvalReport(
        path=where,
        sets=sets,
        model=str(model) if model is not None else None,
        resolution=data.get("resolution"),
        extra=extra,
    )


def load_eval_results(path: str | os.PathLike) -> EvalReport:
    """Read ``examples/evaluate_dis.py``'s JSON file; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"evaluation results not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a JSON file: {error}") from error
    report = parse_eval_results(data, where=str(path))
    report.path = str(path)
    return report


def _format_score(key: str, value: float) -> str:
    if key == "hce" and abs(value) < 10:  # small images: an HCE of 3 is not 3.4
        return f"{value:.2f}"
    return get_metric(key).format(value)


def eval_results_for_model_index(
    report: EvalReport, dataset_id: str = DEFAULT_DATASET_ID
) -> list[EvalResult]:
    """One model-index entry per (set, metric) of ``report``; values rounded to 4 decimals."""
    results = []
    for set_name, scores in report.sets.items():
        for key in METRICS:
            if key not in scores:
                continue
            metric_type, metric_name = METRICS[key]
            results.append(
                EvalResult(
                    task_type="image-segmentation",
                    task_name=TASK_NAME,
                    dataset_type=dataset_id,
                    dataset_name=f"{dataset_id} {set_name}",
                    dataset_split=set_name,
                    metric_type=metric_type,
                    metric_name=metric_name,
                    metric_value=round(scores[key], 4),
                )
            )
    return results


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _eval_section(report: EvalReport | None) -> str:
    if report is None:
        return "No evaluation results are attached to this upload.\n"
    keys = [key for key in METRICS if any(key in scores for scores in report.sets.values())]
    rows = [
        [name] + [_format_score(key, scores[key]) if key in scores else "–" for key in keys]
        for name, scores in report.sets.items()
    ]
    resolution = report.resolution
    if isinstance(resolution, (list, tuple)):
        resolution = "x".join(str(side) for side in resolution)
    elif isinstance(resolution, int):
        resolution = f"{resolution}x{resolution}"
    if report.extra.get("mode") == "predictions" or resolution is None:
        how = "scored from saved prediction maps"
    else:
        how = f"input resolution {resolution}, predictions resized back to each ground truth's size as in the paper"
    protocol = (
        f"Measured with `examples/evaluate_dis.py` ({how}). These are the numbers of the model-index metadata."
    )
    if "DIS-TE (mean)" in report.sets:
        protocol += " DIS-TE (mean) is the unweighted mean over DIS-TE1..4."
    return protocol + "\n\n" + _markdown_table(["Set"] + [get_metric(key).header for key in keys], rows) + "\n"


def _paper_section(card: dict[str, Any]) -> str:
    reported = card.get("reported_in_paper")
    if not reported:
        return ""
    table = _markdown_table(
        ["Model (paper)", "Runtime (ms)", "#Params (M)", "MACs (G)"]
        + [f"DIS-TEs {get_metric(key).header}" for key in ("hce", "wfm")],
        [
            [
                str(reported["model"]),
                str(reported["runtime_ms"]),
                str(reported["params_m"]),
                str(reported["macs_g"]),
                str(reported["dis_te_hce"]),
                str(reported["dis_te_wfm"]),
            ]
        ],
    )
    return (
        "### Reported in the paper\n\n"
        f"Quoted from {reported['source']}. These numbers describe the authors' weights and their measurement "
        "setup; they were not measured on the weights in this repository and are not part of the model-index.\n\n"
        + table
        + "\n"
    )


def _usage_section(repo: str) -> str:
    return f"""## Usage

With the `birefnet_hf` package (registers BiRefNet with the transformers Auto classes and pipelines):

```python
import birefnet_hf  # noqa: F401
from transformers import pipeline

segmenter = pipeline("image-segmentation", model="{repo}")
masks = segmenter("photo.jpg")  # [{{"label": "background", ...}}, {{"label": "foreground", "mask": <PIL "L" image>}}]

remover = pipeline("background-removal", model="{repo}")
remover("photo.jpg")["cutout"].save("cutout.png")  # RGBA, alpha = soft matte
```

With transformers and timm only (the model code ships with this repository):

```python
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForImageSegmentation

model = AutoModelForImageSegmentation.from_pretrained("{repo}", trust_remote_code=True).eval()
processor = AutoImageProcessor.from_pretrained("{repo}", trust_remote_code=True)
image = Image.open("photo.jpg")
inputs = processor(images=image, return_tensors="pt")
with torch.no_grad():
    logits = model(**inputs).logits
matte = processor.post_process_alpha(logits, target_sizes=[(image.height, image.width)])[0]  # float in [0, 1]
```
"""


def _backbone_source(backbone: dict[str, Any]) -> str:
    """``timm `name``` or ``torchvision `name``` of a card's backbone facts."""
    if "torchvision_name" in backbone:
        return f"torchvision `{backbone['torchvision_name']}`"
    return f"timm `{backbone['timm_name']}`"


def _backbone_tag(backbone: dict[str, Any]) -> str:
    return backbone.get("timm_name", backbone.get("torchvision_name", "")).split(".")[0]


def build_model_card(
    card: dict[str, Any],
    repo_id: str | None,
    weights: WeightsSource,
    eval_results: EvalReport | None = None,
    dataset_id: str = DEFAULT_DATASET_ID,
) -> ModelCard:
    """The ``README.md`` of one published model.

    Args:
        card: the facts of ``hub_configs/<size>/card.yaml``.
        repo_id: the Hub repository (``owner/name``) used in the usage examples; a placeholder when ``None``.
        weights: where the weights come from (stated in the card).
        eval_results: evaluation results from ``examples/evaluate_dis.py``; the only source of the model-index.
        dataset_id: ``datasets`` entry and model-index dataset type (e.g. a Hub copy of DIS5K).

    A released family's card facts (``hub_configs/families/<name>/card.yaml``, with a ``family`` field) give the
    family's card (:func:`build_family_model_card`).
    """
    if "family" in card:
        return build_family_model_card(card, repo_id, weights, eval_results, dataset_id=dataset_id)
    size = card["size"]
    repo = repo_id or f"<owner>/birefnet-{size}"
    backbone = card["backbone"]
    macs = card["macs"]
    tags = list(
        dict.fromkeys(
            [
                "birefnet",
                "dichotomous-image-segmentation",
                "background-removal",
                "image-matting",
                size,
                _backbone_tag(backbone),
            ]
        )
    )
    card_data = ModelCardData(
        model_name=card["title"],
        license=card["license"],
        library_name="transformers",
        pipeline_tag="image-segmentation",
        tags=tags,
        datasets=[dataset_id],
        metrics=[metric_type for metric_type, _ in METRICS.values()],
        eval_results=eval_results_for_model_index(eval_results, dataset_id) if eval_results else None,
    )
    resolution = "x".join(str(side) for side in card["input_resolution"])
    macs_resolution = "x".join(str(side) for side in macs["resolution"])
    training = card["training_data"]
    limitations = "\n".join(f"- {item}" for item in card["limitations"])
    details = _markdown_table(
        ["", ""],
        [
            [
                "Architecture",
                "BiRefNet (localization module + reconstruction module with bilateral reference)",
            ],
            [
                "Backbone",
                f"{backbone['name']}: {backbone['family']}; {_backbone_source(backbone)}, pre-trained on {backbone['pretraining']}",
            ],
            ["Parameters", f"{card['parameters'] / 1e6:.1f} M ({card['parameters']:,})"],
            [f"MACs at {macs_resolution}", f"{macs['value'] / 1e9:.1f} G"],
            ["Input", f"RGB, resized to {resolution}, ImageNet mean/std normalisation"],
            ["Output", "one foreground logit per pixel (sigmoid -> probability)"],
            ["Licence", card["license"].upper()],
        ],
    )
    body = f"""
# {card["title"]}

{card["description"]}

Paper: *{card["paper"]["title"]}*, {", ".join(card["paper"]["authors"])}, {card["paper"]["venue"]}, {card["paper"]["year"]}.
Authors' code: {card["paper"]["code"]}.

## Model details

{details}

How the numbers were measured: parameters are counted on the model as built by `BiRefNetForImageSegmentation`; MACs:
{macs["counted"]}

## Weights

{weights.describe()}

{_usage_section(repo)}
## Training data

The paper's training data and recipe (which `examples/train.py` follows):

{training["description"]}

{training["recipe"]}

## Evaluation

{_eval_section(eval_results)}
{_paper_section(card)}
## Intended use

{card["intended_use"]}

## Limitations

{limitations}

## Licence

{card.get("license_note", card["license"])}

## Citation

```bibtex
{card["citation"].rstrip()}
```
"""
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}")


#: Hub tags of a family's use.
_USE_TAGS = {
    "general": ["background-removal", "dichotomous-image-segmentation"],
    "matting": ["image-matting", "background-removal"],
    "portrait": ["portrait-matting", "image-matting"],
    "DIS": ["dichotomous-image-segmentation"],
    "COD": ["camouflaged-object-detection"],
    "HRSOD": ["salient-object-detection"],
}


def _quoted_figures_section(card: dict[str, Any]) -> str:
    figures = card.get("quoted_figures") or []
    if not figures:
        return (
            "### Figures published by the authors\n\n"
            "No figures for this checkpoint were found in the sources read (see Sources).\n"
        )
    rows = []
    for figure in figures:
        metrics = ", ".join(f"{name} {value:g}" for name, value in figure["metrics"].items())
        note = f" ({figure['note']})" if figure.get("note") else ""
        rows.append([figure["quoted_from"], figure["test_set"], metrics + note])
    return (
        "### Figures published by the authors (quoted)\n\n"
        "Quoted from the sources named; they describe the authors' weights and their measurement setup, were not "
        "measured on the weights of this repository and are not part of the model-index.\n\n"
        + _markdown_table(["Quoted from", "Test set", "Figures"], rows)
        + "\n"
    )


def build_family_model_card(
    card: dict[str, Any],
    repo_id: str | None,
    weights: WeightsSource,
    eval_results: EvalReport | None = None,
    dataset_id: str = DEFAULT_DATASET_ID,
) -> ModelCard:
    """The ``README.md`` of a released family converted to this implementation (``birefnet-hf publish --family``).

    Args:
        card: the facts of ``hub_configs/families/<name>/card.yaml`` (see :func:`birefnet_hf.hub_configs.family_card_facts`).
        repo_id: the Hub repository (``owner/name``) used in the usage examples; a placeholder when ``None``.
        weights: where the weights come from (the authors' checkpoint of the family, converted).
        eval_results: our own evaluation (``examples/evaluate_dis.py``), the only source of the model-index; the
            authors' figures are shown in a separate table, labelled as quotes.
        dataset_id: model-index dataset of ``eval_results``.
    """
    name, source_id = card["family"], card["hub_id"]
    repo = repo_id or f"<owner>/{name}"
    backbone, macs, size_facts = card["backbone"], card["macs"], card["input_size"]
    tags = list(dict.fromkeys(["birefnet", name.lower(), *_USE_TAGS.get(card["use"], []), card["size"], _backbone_tag(backbone)]))
    metadata: dict[str, Any] = {}
    if card.get("gated"):
        metadata["extra_gated_prompt"] = (
            f"The {name} weights belong to their owners and are licensed {card['license']}; the original repository "
            f"{source_id} is gated. {card['license_note']} Request access to confirm that you accept these terms."
        )
    card_data = ModelCardData(
        model_name=card["title"],
        license=card["license"],
        library_name="transformers",
        pipeline_tag="image-segmentation",
        tags=tags,
        datasets=[dataset_id] if eval_results else None,
        metrics=[metric_type for metric_type, _ in METRICS.values()] if eval_results else None,
        eval_results=eval_results_for_model_index(eval_results, dataset_id) if eval_results else None,
        **metadata,
    )
    macs_resolution = "x".join(str(side) for side in macs["resolution"])
    processor_size = json.dumps(size_facts["processor_size"])
    licence = card["license"].upper() if card["license"] == "mit" else card["license"]
    details = _markdown_table(
        ["", ""],
        [
            ["Released family", f"`{name}` (original repository: [`{source_id}`](https://huggingface.co/{source_id}))"],
            ["Use", card["use"]],
            ["Architecture", "BiRefNet (localization module + reconstruction module with bilateral reference)"],
            [
                "Backbone",
                f"{backbone['name']}: {backbone['family']}; {_backbone_source(backbone)}, pre-trained on {backbone['pretraining']}",
            ],
            ["Parameters", f"{card['parameters'] / 1e6:.1f} M ({card['parameters']:,})"],
            [f"MACs at {macs_resolution}", f"{macs['value'] / 1e9:.1f} G"],
            ["Native input size", size_facts["rule"]],
            ["Output", "one foreground logit per pixel (sigmoid -> probability)"],
            ["Licence", licence + (" (gated)" if card.get("gated") else "")],
        ],
    )
    switches = card.get("config_switches") or {}
    switches_text = (
        "\n\nThe configuration carries the switches this checkpoint implies: "
        + ", ".join(f"`{key}={value}`" for key, value in switches.items())
        + "."
        if switches
        else ""
    )
    if weights.kind == "converted":
        weights_text = (
            f"The released weights of [`{source_id}`](https://huggingface.co/{source_id}) (`{Path(weights.path).name}`), "
            "converted to this implementation with `birefnet-hf publish --family` (the same tensors under this "
            "implementation's names; the package's parity tests check its outputs against the authors' code)."
        )
    else:
        weights_text = weights.describe()
    limitations = "\n".join(f"- {item}" for item in card["limitations"])
    sources = "\n".join(f"- {item}" for item in card.get("sources", []))
    not_found = card.get("not_found") or []
    not_found_text = (
        "\n\nNot found in those sources (left open here rather than guessed): " + "; ".join(not_found) + "."
        if not_found
        else ""
    )
    licence_section = card["license_note"]
    if not card.get("commercial_use", True):
        licence_section = (
            f"**Non-commercial use only ({card['license']}).** {licence_section} This repository is published "
            f"under the same licence as the original weights and under no other."
        )
    body = f"""
# {card["title"]}

{card["description"]}

This repository holds the weights of [`{source_id}`](https://huggingface.co/{source_id}) converted to the native
transformers implementation of BiRefNet (`birefnet_hf`): no custom code is needed with the package, and the model code
for `trust_remote_code=True` ships with it.

Paper: *{card["paper"]["title"]}*, {", ".join(card["paper"]["authors"])}, {card["paper"]["venue"]}, {card["paper"]["year"]}.
Authors' code: {card["paper"]["code"]}.

## Model details

{details}

How the numbers were measured: parameters are counted on the model as built by `BiRefNetForImageSegmentation`; MACs:
{macs["counted"]}{switches_text}

## Input size

{size_facts["rule"]}. This repository's `preprocessor_config.json` sets it (`size: {processor_size}`), so
`AutoImageProcessor.from_pretrained("{repo}")` and the pipelines use it without a `size` argument.

## Weights

{weights_text}

{_usage_section(repo)}
## Training data

{card["training_data"]["description"]}

## Evaluation

{_eval_section(eval_results)}
{_quoted_figures_section(card)}
## Intended use

{card["intended_use"]}

## Limitations

{limitations}

## Licence

{licence_section}

## Sources

The facts of this card come from:

{sources}{not_found_text}

## Citation

```bibtex
{card["citation"].rstrip()}
```
"""
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}")


__all__ = [
    "DEFAULT_DATASET_ID",
    "METRICS",
    "EvalReport",
    "WeightsSource",
    "build_family_model_card",
    "build_model_card",
    "eval_results_for_model_index",
    "load_eval_results",
    "parse_eval_results",
]
