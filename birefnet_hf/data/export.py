# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Export image/mask datasets as self-contained parquet or Arrow folders (images embedded), or to the Hub.

Datasets built by :func:`~birefnet_hf.data.load_dis5k` and friends point at the image files; the exports
here copy the encoded image bytes into the files, so the result no longer needs the source folder:

* ``format="parquet"``: ``data/<split>-00000-of-0000N.parquet`` shards plus a ``README.md`` whose YAML
  header declares the splits -- the layout of a Hub dataset repository, loadable with
  ``datasets.load_dataset(folder)`` or :func:`~birefnet_hf.data.load_hub_dataset`, and uploadable as is;
* ``format="arrow"``: ``DatasetDict.save_to_disk``, loadable with ``datasets.load_from_disk``.

Both are written to a temporary folder next to the destination and renamed into place when complete.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

import datasets
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datasets.table import embed_table_storage
from datasets.utils.py_utils import convert_file_size_to_int
from tqdm.auto import tqdm
from transformers.utils import logging

from ..atomic_io import atomic_folder

logger = logging.get_logger(__name__)

_ROWS_PER_ROW_GROUP = 100


def _as_dataset_dict(dataset: datasets.Dataset | datasets.DatasetDict) -> datasets.DatasetDict:
    if isinstance(dataset, datasets.DatasetDict):
        return dataset
    if isinstance(dataset, datasets.Dataset):
        return datasets.DatasetDict({str(dataset.split or "train"): dataset})
    raise TypeError(f"Expected a datasets.Dataset or DatasetDict, got {type(dataset).__name__}")


def _media_nbytes(dataset: datasets.Dataset) -> int:
    """Bytes the image columns will take once embedded (file sizes for path-backed rows)."""
    total = 0
    table = dataset.with_format("arrow")[:]
    for name, feature in dataset.features.items():
        if not isinstance(feature, datasets.Image):
            continue
        column = table.column(name)
        embedded = pc.struct_field(column, "bytes")
        total += int(pc.sum(pc.binary_length(embedded)).as_py() or 0)
        paths = pc.filter(pc.struct_field(column, "path"), pc.is_null(embedded))
        total += sum(os.path.getsize(path) for path in paths.to_pylist() if path and os.path.isfile(path))
    return total


def _write_parquet_split(
    dataset: datasets.Dataset, split: str, data_dir: Path, max_shard_bytes: int, bar: tqdm
) -> list[str]:
    num_shards = max(1, math.ceil(_media_nbytes(dataset) / max_shard_bytes)) if len(dataset) else 1
    num_shards = min(num_shards, max(1, len(dataset)))
    schema = dataset.features.arrow_schema
    names = []
    for index in range(num_shards):
        shard = dataset.shard(num_shards=num_shards, index=index, contiguous=True)
        name = f"{split}-{index:05d}-of-{num_shards:05d}.parquet"
        with pq.ParquetWriter(data_dir / name, schema=schema) as writer:
            for table in shard.with_format("arrow").iter(batch_size=_ROWS_PER_ROW_GROUP):
                embedded = embed_table_storage(table)
                writer.write_table(pa.Table.from_batches(embedded.to_batches(), schema=schema))
                bar.update(table.num_rows)
        names.append(name)
    return names


def _dataset_card(dataset_dict: datasets.DatasetDict) -> str:
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for split in dataset_dict:
        lines += [f"  - split: {split}", f"    path: data/{split}-*"]
    lines += ["task_categories:", "- image-segmentation", "---", ""]
    counts = ", ".join(f"{split}: {len(ds)}" for split, ds in dataset_dict.items())
    lines += [
        "# Image / mask dataset",
        "",
        "Binary (dichotomous) segmentation data in the format of `birefnet_hf.data`: columns `image` (RGB),",
        "`mask` (L, 255 = foreground), `label` (DIS5K class id, -1 when none) and `file_name`.",
        "",
        f"Examples per split: {counts}.",
        "",
    ]
    return "\n".join(lines)


def export_dataset(
    dataset: datasets.Dataset | datasets.DatasetDict,
    output_dir: str | os.PathLike,
    *,
    format: Literal["parquet", "arrow"] = "parquet",
    max_shard_size: str | int = "500MB",
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write ``dataset`` with its images embedded to ``output_dir`` (see the module docstring); returns it.

    Raises:
        FileExistsError: ``output_dir`` exists and is not empty, unless ``overwrite`` (it is then replaced).
    """
    if format not in ("parquet", "arrow"):
        raise ValueError(f"format must be 'parquet' or 'arrow', got {format!r}")
    dataset_dict = _as_dataset_dict(dataset)
    output_dir = Path(output_dir)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())) and not overwrite:
        raise FileExistsError(
            f"{output_dir} exists and is not empty; pass overwrite=True (--overwrite) to replace it"
        )
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(output_dir) as staging:
        if format == "arrow":
            # save_to_disk wants to create its folder itself: save into a subfolder, then lift its files up
            dataset_dict.save_to_disk(str(staging / "dataset"), max_shard_size=max_shard_size)
            for path in (staging / "dataset").iterdir():
                os.replace(path, staging / path.name)
            (staging / "dataset").rmdir()
        else:
            data_dir = staging / "data"
            data_dir.mkdir()
            max_shard_bytes = convert_file_size_to_int(max_shard_size)
            total = sum(len(split_dataset) for split_dataset in dataset_dict.values())
            with tqdm(
                total=total, desc="Embedding images into parquet", unit="ex", disable=not progress
            ) as bar:
                for split, split_dataset in dataset_dict.items():
                    _write_parquet_split(split_dataset, split, data_dir, max_shard_bytes, bar)
            (staging / "README.md").write_text(_dataset_card(dataset_dict), encoding="utf-8")
    logger.info(f"Exported {dict((k, len(v)) for k, v in dataset_dict.items())} as {format} to {output_dir}")
    return output_dir


def push_dataset_to_hub(
    dataset: datasets.Dataset | datasets.DatasetDict,
    repo_id: str,
    *,
    private: bool | None = None,
    max_shard_size: str | int = "500MB",
    token: str | None = None,
    commit_message: str | None = None,
) -> None:
    """Upload ``dataset`` (images embedded) to the Hub dataset repository ``repo_id`` via ``push_to_hub``."""
    dataset_dict = _as_dataset_dict(dataset)
    dataset_dict.push_to_hub(
        repo_id,
        private=private,
        max_shard_size=max_shard_size,
        token=token,
        commit_message=commit_message or "Upload image/mask dataset with birefnet_hf",
        embed_external_files=True,
    )
    logger.info(f"Pushed {list(dataset_dict)} to https://huggingface.co/datasets/{repo_id}")
