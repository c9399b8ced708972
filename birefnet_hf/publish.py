# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
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

This module is the command (options and the three phases in order); the parts are in :mod:`birefnet_hf.publishing`:
``plan`` (options -> one :class:`SizePlan` per size or family), ``weights`` (checked against the config, loaded),
``hub_folder`` (the folder's files, the upload) and ``remote_check`` (the fresh-process ``trust_remote_code`` check,
a script of its own). Their public names are re-exported here.
"""


from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from transformers.utils import logging

from .atomic_io import atomic_folder
from .hub_configs import ALL_SIZES, HUB_SIZES, load_hub_config_folder
from .model_card import DEFAULT_DATASET_ID, build_model_card
from .publishing.hub_folder import save_model_folder, upload_folder
from .publishing.plan import PublishError, SizePlan, check_family_card, default_hub_configs, plan_publication
from .publishing.remote_check import CHECK_SIZE, check_remote_code
from .publishing.weights import (
    ARCHITECTURE_FIELDS,
    CLASSIFIER_PREFIX,
    authors_checkpoint_file,
    load_model,
    validate_weights,
)

logger = logging.get_logger(__name__)

__all__ = [
    "build_folder",
    "build_parser",
    "main",
    "publish",
    # re-exported from birefnet_hf.publishing
    "ARCHITECTURE_FIELDS",
    "CHECK_SIZE",
    "CLASSIFIER_PREFIX",
    "PublishError",
    "SizePlan",
    "authors_checkpoint_file",
    "check_family_card",
    "check_remote_code",
    "default_hub_configs",
    "load_model",
    "plan_publication",
    "save_model_folder",
    "upload_folder",
    "validate_weights",
]

#: The old private name of :func:`~birefnet_hf.publishing.plan.default_hub_configs` (still imported by callers).
_default_hub_configs = default_hub_configs


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
        "--eval-results", action="append", metavar="SIZE=PATH", help="JSON written by examples/evaluate_dis.py"
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
        help="folder of hub_configs/<size>/ (default: the package's own, birefnet_hf/hub_configs_data)",
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
    with atomic_folder(destination) as staging:
        save_model_folder(model, image_processor, card, staging)
        if remote_code_check:
            check_remote_code(staging, reference_model=model)
        if onnx:
            from .onnx_export import export_onnx_folder, transformers_js_preprocessor_config

            export_onnx_folder(model, image_processor, staging / "onnx")
            # transformers.js reads the same preprocessor_config.json and refuses BiRefNet's processor type
            preprocessor = staging / "preprocessor_config.json"
            settings = transformers_js_preprocessor_config(json.loads(preprocessor.read_text(encoding="utf-8")))
            preprocessor.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return destination


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
