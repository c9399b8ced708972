# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Phase 1 of ``birefnet-hf publish``: the plan. What is built and where it goes, from the command's options.

One :class:`SizePlan` per backbone size (``--only``, default :data:`~birefnet_hf.hub_configs.HUB_SIZES`) or per
released family (``--family`` / ``--all-families``): its ``hub_configs`` folder (config, processor settings and card
facts), its weights source (``--weights-dir``, ``--checkpoint``, ``--random-init``), its evaluation report and its
repository id. Every problem with the options is collected and raised as one :class:`PublishError` naming the option
at fault, before any model is built; the weights themselves are checked by :mod:`birefnet_hf.publishing.weights`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..hub_configs import ALL_SIZES, FAMILIES_FOLDER, HUB_CONFIGS_DIR, HUB_SIZES, load_hub_config_folder
from ..model_card import EvalReport, WeightsSource, load_eval_results

__all__ = ["PublishError", "SizePlan", "check_family_card", "default_hub_configs", "plan_publication"]


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


def default_hub_configs() -> Path:
    """The package's ``hub_configs`` folder (:data:`~birefnet_hf.hub_configs.HUB_CONFIGS_DIR`, package data)."""
    return HUB_CONFIGS_DIR


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


def _check_run_mode(args: argparse.Namespace) -> None:
    """--random-init only in dry runs, and a dry run keeps its folders somewhere."""
    if args.random_init and not args.dry_run:
        raise PublishError(
            "--random-init is for dry runs only (random weights must never be published): add --dry-run."
        )
    if args.dry_run and args.output_dir is None:
        raise PublishError("--dry-run needs --output-dir (where the folders are left for inspection).")


def _hub_configs_root(args: argparse.Namespace) -> Path:
    """The folder of ``hub_configs/<size>/`` folders: ``--hub-configs`` or the package's own."""
    hub_root = args.hub_configs if args.hub_configs is not None else default_hub_configs()
    if not hub_root.is_dir():
        raise PublishError(
            f"hub configs folder {hub_root} not found: pass --hub-configs, or generate it with "
            f"`python -m birefnet_hf.hub_configs --output-dir {hub_root}`."
        )
    return hub_root


def _check_output_folder(args: argparse.Namespace, name: str, problems: list[str]) -> None:
    """An existing non-empty ``--output-dir/<name>`` is only replaced with ``--overwrite``."""
    if args.output_dir is not None:
        destination = args.output_dir / name
        if destination.exists() and any(destination.iterdir()) and not args.overwrite:
            problems.append(
                f"{destination} exists and is not empty; pass --overwrite or choose another --output-dir."
            )


def _checkpoint_or_random(
    key: str, checkpoints: dict[str, str], args: argparse.Namespace, problems: list[str], folders: bool, no_weights: str
) -> WeightsSource | None:
    """The weights of ``key`` from ``--checkpoint`` (a file; with ``folders``, also a folder in the authors' layout)
    or ``--random-init``; ``None`` with the problem appended when there are none (``no_weights``) or the path is
    missing."""
    if key in checkpoints:
        path = Path(checkpoints[key])
        if path.is_file() or (folders and path.is_dir()):
            return WeightsSource("converted", str(path))
        problems.append(f"--checkpoint {key}: {path} not found.")
    elif args.random_init:
        return WeightsSource("random")
    else:
        problems.append(no_weights)
    return None


def _token_unless_problems(args: argparse.Namespace, problems: list[str]) -> str | None:
    """The Hub token (``None`` for a dry run); raises :class:`PublishError` listing every problem found."""
    token = None
    if not args.dry_run:
        try:
            token = _resolve_token(args)
        except PublishError as error:
            problems.append(str(error))
    if problems:
        raise PublishError("\n  ".join(["cannot publish:"] + problems))
    return token


def check_family_card(name: str, card: dict[str, Any], hub_folder: Path) -> None:
    """Refuse a family's ``card.yaml`` that describes another family or another licence than the family's own
    (e.g. RMBG-2.0 under MIT): a family is only ever published under its licence."""
    from ..families import check_publish_license

    if card.get("family") != name:
        raise PublishError(
            f"{hub_folder / 'card.yaml'} describes {card.get('family')!r}, not the family {name}; regenerate the hub "
            "configs with `python -m birefnet_hf.hub_configs`."
        )
    try:
        check_publish_license(name, str(card["license"]))
    except ValueError as error:
        raise PublishError(f"{hub_folder / 'card.yaml'}: {error}") from error


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
            f"{key}: no --eval-results (the model card's results come from examples/evaluate_dis.py); "
            "pass --allow-missing-eval-results to upload without them."
        )
    if not args.dry_run and key not in repo_ids:
        problems.append(f"{key}: no repository id; pass --repo-prefix OWNER/PREFIX or --repo-id {key}=OWNER/NAME.")
    return report


def _checked_plan(
    key: str,
    hub_folder: Path,
    weights: WeightsSource | None,
    args: argparse.Namespace,
    eval_paths: dict[str, str],
    repo_ids: dict[str, str],
    problems: list[str],
    found: int,
    family: str | None = None,
) -> SizePlan | None:
    """The plan of one size or family, after the checks of its evaluation results, repository id, hub_configs folder
    (a family's card must be its own) and output folder; ``None`` when any problem was added since ``found``."""
    report = _eval_results_and_repo_checks(key, eval_paths, repo_ids, args, problems)
    try:
        card = load_hub_config_folder(hub_folder)["card"]
        if family is not None:
            check_family_card(family, card, hub_folder)
    except (FileNotFoundError, ValueError) as error:
        problems.append(str(error))
    _check_output_folder(args, key, problems)
    if len(problems) > found:
        return None
    return SizePlan(key, hub_folder, weights, report, repo_ids.get(key), family=family)


def plan_publication(args: argparse.Namespace) -> tuple[list[SizePlan], str | None]:
    """Phase 1 (except the weights check): turn the options into one :class:`SizePlan` per size, or raise
    :class:`PublishError` naming the option at fault. Returns the plans and the Hub token (``None`` for dry runs)."""
    if args.family or args.all_families:
        return _plan_families(args)
    if args.license is not None and args.license.lower() != "mit":
        raise PublishError(f"--license {args.license!r}: the backbone sizes are published under their licence, mit.")
    sizes = list(dict.fromkeys(args.only or HUB_SIZES))
    _check_run_mode(args)
    hub_root = _hub_configs_root(args)

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
        else:
            weights = _checkpoint_or_random(
                size,
                checkpoints,
                args,
                problems,
                folders=False,
                no_weights=f"{size}: no weights (--weights-dir, --checkpoint, or --random-init for a dry run); "
                "use --only to publish a subset.",
            )
        plan = _checked_plan(size, hub_root / size, weights, args, eval_paths, repo_ids, problems, found)
        if plan is not None:
            plans.append(plan)
    return plans, _token_unless_problems(args, problems)


def _plan_families(args: argparse.Namespace) -> tuple[list[SizePlan], str | None]:
    """:func:`plan_publication` for ``--family`` / ``--all-families``: one plan per family, its weights converted
    from ``--checkpoint NAME=PATH`` (or random for a dry run), its folder ``hub_configs/families/<name>/``."""
    from ..families import FAMILIES, check_publish_license, get_family

    if args.family and args.all_families:
        raise PublishError("--family and --all-families: give one of them.")
    if args.only:
        raise PublishError("--only selects backbone sizes; it cannot be combined with --family / --all-families.")
    if args.weights_dir:
        raise PublishError(
            "--weights-dir is not used with --family: a released family is converted from the authors' checkpoint "
            "(--checkpoint NAME=FILE or NAME=FOLDER in the authors' layout)."
        )
    _check_run_mode(args)
    names = []
    for name in args.family or list(FAMILIES):
        try:
            names.append(get_family(name).name)
        except ValueError as error:
            raise PublishError(f"--family: {error}") from error
    names = list(dict.fromkeys(names))
    known = tuple(FAMILIES)
    hub_root = _hub_configs_root(args)
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
        weights = _checkpoint_or_random(
            name,
            checkpoints,
            args,
            problems,
            folders=True,
            no_weights=f"{name}: no weights (--checkpoint {name}=FILE_OR_AUTHORS_FOLDER, a {{family}} pattern, or "
            "--random-init for a dry run); use --family to publish a subset.",
        )
        hub_folder = hub_root / FAMILIES_FOLDER / name
        plan = _checked_plan(name, hub_folder, weights, args, eval_paths, repo_ids, problems, found, family=name)
        if plan is not None:
            plans.append(plan)
    return plans, _token_unless_problems(args, problems)
