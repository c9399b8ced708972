# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""What `birefnet-hf segment` reads and where it writes: inputs (files, folders searched recursively, glob
patterns) become [`collect_inputs`] jobs, each with one distinct output path ([`_assign_output_paths`]); earlier
outputs found among the inputs are left out and existing output files are kept, replaced or reported by the
existing-output policy ([`EXISTING_POLICIES`])."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from transformers.utils import logging

from .background_removal import is_segment_output
from .image_io import IMAGE_EXTENSIONS  # the one image-extension set (re-exported)

logger = logging.get_logger(__name__)

__all__ = ["IMAGE_EXTENSIONS", "EXISTING_POLICIES", "collect_inputs"]



_GLOB_MAGIC = re.compile(r"[*?\[]")


@dataclass
class _Job:
    source: Path
    relative: Path  # output path relative to the output folder, before the ".png" naming
    anchor: Path = Path(
        "."
    )  # the folder `relative` starts from: the input folder, glob base or file's folder
    explicit: bool = False  # named on the command line (not found in a folder or by a pattern)


def _glob_base(pattern: str) -> Path:
    parts = Path(pattern).parts
    base_parts: list[str] = []
    for part in parts:
        if _GLOB_MAGIC.search(part):
            break
        base_parts.append(part)
    return Path(*base_parts) if base_parts else Path(".")


def _scan_folder(folder: Path, skip: Path) -> tuple[list[Path], int]:
    """Image files under `folder` (recursive, sorted, hidden entries and the output folder skipped)."""
    found, ignored = [], 0
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (root_path / d).resolve() != skip)
        for name in sorted(files):
            if name.startswith("."):
                continue
            if Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                found.append(root_path / name)
            else:
                ignored += 1
    return found, ignored


def collect_inputs(specs: Sequence[str], output_dir: Path) -> tuple[list[_Job], list[tuple[str, str]], int]:
    """Expand files, folders (recursive) and glob patterns into jobs; returns (jobs, failures, ignored count)."""
    jobs: list[_Job] = []
    failures: list[tuple[str, str]] = []
    ignored = 0
    skip = output_dir.resolve()
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            files, skipped = _scan_folder(path, skip)
            ignored += skipped
            jobs += [_Job(file, file.relative_to(path), path) for file in files]
        elif path.is_file():
            jobs.append(_Job(path, Path(path.name), path.parent, explicit=True))
        elif _GLOB_MAGIC.search(spec):
            base = _glob_base(spec)
            matches = sorted(Path(match) for match in glob.glob(spec, recursive=True))
            if not matches:
                failures.append((spec, "no file matches this pattern"))
            for match in matches:
                if match.is_dir():
                    files, skipped = _scan_folder(match, skip)
                    ignored += skipped
                    jobs += [
                        _Job(file, match.relative_to(base) / file.relative_to(match), base) for file in files
                    ]
                elif match.is_file() and skip not in match.resolve().parents:
                    jobs.append(_Job(match, match.relative_to(base), base))
        else:
            failures.append((spec, "no such file or directory"))

    unique: dict[Path, _Job] = {}
    for job in jobs:
        unique.setdefault(job.source.resolve(), job)
    jobs = list(unique.values())
    _relative_to_common_folder(jobs)
    return jobs, failures, ignored


def _relative_to_common_folder(jobs: Sequence[_Job]) -> None:
    """With inputs from several places (`segment dir1 dir2`), prefix each job's relative path with its folder's
    path below the folders' common ancestor, so `dir1/x.jpg` and `dir2/x.jpg` become `dir1/x.png` and
    `dir2/x.png` under the output folder instead of one `x.png`."""
    anchors = {os.path.abspath(job.anchor) for job in jobs}
    if len(anchors) < 2:
        return
    try:
        common = os.path.commonpath(sorted(anchors))
    except ValueError:  # different drives (Windows): keep each anchor's full path below its drive
        common = None
    for job in jobs:
        anchor = os.path.abspath(job.anchor)
        prefix = Path(os.path.relpath(anchor, common)) if common else Path(*Path(anchor).parts[1:])
        job.relative = prefix / job.relative


def _assign_output_paths(jobs: Sequence[_Job], output_dir: Path) -> dict[Path, Path]:
    """One distinct output path per job: `<stem>.png`, mirroring the input folders; inputs that would share a
    name (`x.jpg` and `x.png`; compared case-insensitively, as macOS and Windows file systems do) get
    `<name>.png`, and a name still taken after that gets a number (`<name>.2.png`). The names depend only on the
    set of inputs, so re-running the same command writes the same files."""
    by_name: dict[str, list[_Job]] = {}
    for job in jobs:
        by_name.setdefault(_path_key(job.relative.with_suffix(".png")), []).append(job)
    preferred: dict[Path, Path] = {}
    for group in by_name.values():
        for job in group:
            name = job.relative.with_suffix(".png")
            preferred[job.source] = (
                name if len(group) == 1 else job.relative.parent / f"{job.relative.name}.png"
            )
        if len(group) > 1:
            logger.warning(
                f"{len(group)} inputs would be written to {output_dir / group[0].relative.with_suffix('.png')}; "
                f"naming them after their full file names instead: {', '.join(str(job.source) for job in group)}"
            )
    taken: set[str] = set()
    outputs: dict[Path, Path] = {}
    for job in sorted(jobs, key=lambda job: (str(preferred[job.source]), str(job.source))):
        relative, number = preferred[job.source], 1
        while _path_key(relative) in taken:
            number += 1
            relative = preferred[job.source].with_name(f"{preferred[job.source].stem}.{number}.png")
        taken.add(_path_key(relative))
        outputs[job.source] = output_dir / relative
    return outputs


def _path_key(path: Path) -> str:
    return str(path).casefold()


def _drop_earlier_outputs(jobs: Sequence[_Job]) -> tuple[list[_Job], list[_Job]]:
    """Split off inputs that are this tool's own outputs (re-running into the input folder must not segment the
    previous run's cut-outs); returns (kept, dropped)."""
    kept, dropped = [], []
    for job in jobs:
        (dropped if is_segment_output(job.source) else kept).append(job)
    return kept, dropped


#: What to do with an output file that already exists: `--skip-existing`, `--overwrite`, or the default.
EXISTING_POLICIES = ("skip", "overwrite", "replace-own")


def _check_existing_outputs(
    jobs: Sequence[_Job], outputs: dict[Path, Path], policy: str, failures: list[tuple[str, str]]
) -> tuple[list[_Job], list[_Job]]:
    """Apply the existing-output policy; returns (jobs to run, jobs skipped because their output exists).

    An input is never overwritten. Existing outputs are kept (`"skip"`), replaced (`"overwrite"`), or, by
    default (`"replace-own"`), replaced only when this tool wrote them (a re-run refreshes its own files) while
    any other file is reported as a failure and left alone."""
    inputs = {job.source.resolve() for job in jobs}
    runnable, skipped = [], []
    for job in jobs:
        output = outputs[job.source]
        if output.resolve() in inputs:
            failures.append(
                (str(job.source), f"output {output} would overwrite an input; choose another --output-dir")
            )
        elif output.is_dir():
            failures.append((str(job.source), f"output {output} is a folder"))
        elif not (output.exists() or output.is_symlink()):
            runnable.append(job)
        elif policy == "skip":
            skipped.append(job)
        elif policy == "overwrite" or is_segment_output(output):
            runnable.append(job)
        else:
            failures.append(
                (
                    str(job.source),
                    f"{output} exists and was not written by birefnet-hf segment; pass --overwrite to replace it "
                    "or --skip-existing to keep it",
                )
            )
    return runnable, skipped


def _output_dir_problem(output_dir: Path) -> str | None:
    """Why `output_dir` cannot be the output folder (checked before any work), or None."""
    if output_dir.exists() and not output_dir.is_dir():
        return f"--output-dir {output_dir} exists and is not a folder"
    ancestor = output_dir.absolute()
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"--output-dir {output_dir} cannot be created: {ancestor} is a file, not a folder"
    return None
