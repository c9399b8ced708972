# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Bulk background removal on many GPUs or machines: sharding under `accelerate launch` (or `torchrun`).

```
accelerate launch --num_processes 8 -m birefnet_hf.cli segment photos/ -m path/to/birefnet -o cutouts
accelerate launch --num_processes 8 -m birefnet_hf.cli segment-dataset --dataset path/to/saved_dataset \\
    --split test -m path/to/birefnet -o cutouts
```

Every process lists the same inputs (sorted, so the lists agree), takes every N-th one (round robin: process `r`
of `N` gets items `r, r + N, ...`), runs the model on its own device (`cuda:<local rank>`, or the CPU), and writes
its own outputs; no file is written by two processes. At the end the processes exchange their counts and failures
and the main process prints the totals; every process exits with 1 if any of them failed. Nothing is sent between
processes but those summaries, so machines only need the shared input and output folders (e.g. NFS) and the
launcher's rendezvous (`--num_machines`, `--machine_rank`, `--main_process_ip` / `--main_process_port`).
Outside a launcher (no `WORLD_SIZE` in the environment) there is one shard holding everything.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from tqdm.auto import tqdm
from transformers.utils import logging

from .background_removal import (
    _DTYPES,
    OUTPUT_FORMATS,
    load_model_and_processor,
    remove_background,
    write_image_atomically,
)
from .command_args import parse_resolution, positive_int
from .cutout_options import CutoutSettings, MatteOptions, add_cutout_arguments, cutout_settings_from_args

logger = logging.get_logger(__name__)

__all__ = ["ProcessShard", "segment_dataset", "main"]

T = TypeVar("T")


@dataclass
class ProcessShard:
    """This process's place among the processes of a launch.

    Attributes:
        rank (`int`): global process index (`RANK`).
        world_size (`int`): number of processes (`WORLD_SIZE`).
        local_rank (`int`): index on this machine (`LOCAL_RANK`): the GPU it uses.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    _state: Any = field(default=None, repr=False)

    @classmethod
    def from_environment(cls) -> ProcessShard:
        """Read the launcher's environment (`accelerate launch`, `torchrun`); one process when there is none.

        With several processes the process group is set up through Accelerate's `PartialState` (NCCL between
        GPUs, gloo between CPU processes)."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        from accelerate import PartialState

        state = PartialState(cpu=not torch.cuda.is_available())
        return cls(
            rank=state.process_index,
            world_size=state.num_processes,
            local_rank=state.local_process_index,
            _state=state,
        )

    @property
    def active(self) -> bool:
        """Whether there are several processes."""
        return self.world_size > 1

    @property
    def is_main_process(self) -> bool:
        return self.rank == 0

    def default_device(self) -> str:
        """`cuda:<local rank>` when GPUs are visible, else `cpu`."""
        if torch.cuda.is_available():
            return f"cuda:{self.local_rank % torch.cuda.device_count()}" if self.active else "cuda"
        return "cpu"

    def barrier(self) -> None:
        if self._state is not None:
            self._state.wait_for_everyone()

    def select(self, items: Sequence[T]) -> list[T]:
        """This process's share of `items` (round robin). Waits for every process first, so no process starts
        writing before all of them have listed the inputs and checked the existing outputs."""
        self.barrier()
        return list(items[self.rank :: self.world_size])

    def gather(self, value: Any) -> list[Any]:
        """`value` from every process, in rank order (on every process)."""
        if self._state is None:
            return [value]
        from accelerate.utils import gather_object

        return gather_object([value])

    def combine(
        self, written: int, failures: list[tuple[str, str]], label: str = "birefnet-hf segment"
    ) -> tuple[int, list[tuple[str, str]]]:
        """Print this process's share and return the totals of all processes: files written (summed) and failures
        (all of them, each once: failures found while listing the inputs are seen by every process)."""
        if not self.active:
            return written, failures
        print(
            f"{label}: [process {self.rank + 1}/{self.world_size}] wrote {written} file(s), {len(failures)} failed"
        )
        shares = self.gather((written, failures))
        total = sum(count for count, _ in shares)
        merged = list(dict.fromkeys(tuple(item) for _, items in shares for item in items))
        return total, merged


# ---------------------------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------------------------


def _load_dataset(spec: str, split: str | None, config_name: str | None) -> Any:
    import datasets

    path = Path(spec)
    if path.is_dir() and ((path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file()):
        dataset = datasets.load_from_disk(str(path))  # written by save_to_disk
    else:
        dataset = datasets.load_dataset(spec, config_name, split=split)
    if isinstance(dataset, datasets.DatasetDict):
        if split is None:
            if len(dataset) != 1:
                raise ValueError(f"--dataset {spec!r} has splits {sorted(dataset)}; choose one with --split.")
            split = next(iter(dataset))
        if split not in dataset:
            raise ValueError(f"--dataset {spec!r} has no split {split!r}; it has {sorted(dataset)}.")
        dataset = dataset[split]
    return dataset


def _output_names(dataset: Any, name_column: str | None) -> list[str]:
    """One output name (without suffix) per row: the name column's file stem, else the zero-padded row index."""
    if name_column is None:
        digits = max(6, len(str(len(dataset))))
        return [f"{index:0{digits}d}" for index in range(len(dataset))]
    names = [Path(str(value)).with_suffix("").as_posix().lstrip("/") for value in dataset[name_column]]
    if len(set(names)) != len(names):
        duplicates = sorted({name for name in names if names.count(name) > 1})[:5]
        raise ValueError(f"column {name_column!r} repeats names (e.g. {duplicates}); outputs would collide.")
    return names


def segment_dataset(
    dataset: Any,
    model: Any,
    output_dir: str | os.PathLike,
    *,
    processor: Any | None = None,
    image_column: str = "image",
    name_column: str | None = None,
    output_format: str = "rgba",
    threshold: float = 0.5,
    batch_size: int = 1,
    resolution: dict | None = None,
    shard: ProcessShard | None = None,
    progress: bool = True,
    cutout: CutoutSettings | None = None,
) -> tuple[int, list[tuple[str, str]]]:
    """Segment every row of a `datasets.Dataset` (this process's share under a launcher) and write PNG files.

    Args:
        dataset: a `datasets.Dataset` with an image column (decoded PIL images or paths).
        model: a loaded model or a model folder / Hub id.
        output_dir: where `<name>.png` files go; the name is the `name_column`'s file name without suffix (sub
            folders kept), or the row index.
        image_column, name_column: the columns to read.
        output_format, threshold: as `birefnet-hf segment --format`; `threshold` binarises `--format mask` when
            `cutout` sets no threshold.
        batch_size, resolution: images per forward pass; model input size.
        shard: this process's [`ProcessShard`] (default: from the environment).
        cutout: the cut-out options of `birefnet-hf segment` (`cutout_options.cutout_settings`: max side, matte
            post-processing, foreground colours, background); default none.

    Returns:
        (files written, failures as (row name, reason)) over all processes.
    """
    cutout = cutout or CutoutSettings(MatteOptions())

    shard = shard or ProcessShard.from_environment()
    if image_column not in dataset.column_names:
        raise ValueError(
            f"the dataset has no column {image_column!r}; its columns are {dataset.column_names}."
        )
    if name_column is not None and name_column not in dataset.column_names:
        raise ValueError(
            f"the dataset has no column {name_column!r}; its columns are {dataset.column_names}."
        )
    output_dir = Path(output_dir)
    names = _output_names(dataset, name_column)
    indices = shard.select(range(len(dataset)))
    if isinstance(model, (str, os.PathLike)):
        model, processor = load_model_and_processor(model, processor, device=shard.default_device())
    elif processor is None:
        model, processor = load_model_and_processor(model)
    written, failures = 0, []
    disable = not progress
    with tqdm(
        total=len(indices), unit="img", desc=f"segment [{shard.rank + 1}/{shard.world_size}]", disable=disable
    ) as bar:
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            rows = dataset.select(chunk)[image_column]
            try:
                results = remove_background(
                    list(rows), model=model, processor=processor, batch_size=len(chunk), resolution=resolution,
                    **cutout.remove_background_kwargs(),
                )  # fmt: skip
            except (OSError, ValueError, TypeError, RuntimeError) as error:
                failures += [(names[index], f"segmentation failed: {error}") for index in chunk]
                bar.update(len(chunk))
                continue
            for index, result in zip(chunk, results, strict=True):
                path = output_dir / f"{names[index]}.png"
                try:
                    image = cutout.render(result, output_format, threshold)
                    write_image_atomically(image, path)
                    written += 1
                except OSError as error:
                    failures.append((names[index], f"cannot write {path}: {error}"))
            bar.update(len(chunk))
    return shard.combine(written, failures, label="birefnet-hf segment-dataset")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="birefnet-hf segment-dataset",
        description=(
            "Segment the images of a `datasets` dataset (a save_to_disk folder or a name for load_dataset) and "
            "write one PNG per row. Under `accelerate launch` the rows are shared among the processes."
        ),
    )
    parser.add_argument("--dataset", required=True, help="save_to_disk folder, or a dataset name / folder")
    parser.add_argument("--split", default=None, help="split to use (needed when there are several)")
    parser.add_argument("--config-name", default=None, help="dataset configuration for load_dataset")
    parser.add_argument("--image-column", default="image", help="column with the images (default 'image')")
    parser.add_argument(
        "--name-column",
        default=None,
        help="column naming the outputs (e.g. 'file_name'; default: the row index)",
    )
    parser.add_argument("--model", "-m", required=True, help="model folder (save_pretrained) or Hub id")
    parser.add_argument("--output-dir", "-o", required=True, type=Path, help="where to write the PNG files")
    parser.add_argument(
        "--format", "-f", choices=OUTPUT_FORMATS, default="rgba", help="as in birefnet-hf segment"
    )
    parser.add_argument("--batch-size", "-b", type=positive_int, default=1, help="images per forward pass")
    parser.add_argument(
        "--device", default=None, help="default: cuda:<local rank> if GPUs are visible, else cpu"
    )
    parser.add_argument("--dtype", choices=sorted(_DTYPES), default="float32", help="model precision")
    parser.add_argument("--resolution", type=parse_resolution, default=None, help="model input size N or HxW")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_cutout_arguments(parser)  # as in birefnet-hf segment
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`birefnet-hf segment-dataset`: 0 when every row was written, 1 when any failed, 2 on usage errors."""
    args = build_parser().parse_args(argv)
    try:
        cutout = cutout_settings_from_args(args)
    except (OSError, ValueError, ImportError) as error:
        print(f"birefnet-hf segment-dataset: {error}", file=sys.stderr)
        return 2
    try:
        dataset = _load_dataset(args.dataset, args.split, args.config_name)
    except (OSError, ValueError, FileNotFoundError) as error:
        print(
            f"birefnet-hf segment-dataset: cannot load --dataset {args.dataset!r}: {error}", file=sys.stderr
        )
        return 2
    shard = ProcessShard.from_environment()
    try:
        model, processor = load_model_and_processor(
            args.model, device=args.device or shard.default_device(), dtype=args.dtype
        )
    except Exception as error:  # any load failure is a usage error, never a traceback
        print(f"birefnet-hf segment-dataset: cannot load model {args.model!r}: {error}", file=sys.stderr)
        return 2
    try:
        written, failures = segment_dataset(
            dataset, model, args.output_dir, processor=processor, image_column=args.image_column,
            name_column=args.name_column, output_format=args.format, batch_size=args.batch_size,
            resolution=args.resolution, shard=shard, progress=not args.no_progress, cutout=cutout,
        )  # fmt: skip
    except ValueError as error:
        print(f"birefnet-hf segment-dataset: {error}", file=sys.stderr)
        return 2
    if shard.is_main_process:
        print(
            f"birefnet-hf segment-dataset: wrote {written} file(s) to {args.output_dir}"
            + (f" with {shard.world_size} processes" if shard.active else "")
            + (f"; {len(failures)} failed:" if failures else ".")
        )
        for name, reason in failures:
            print(f"  FAILED {name}: {reason}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
