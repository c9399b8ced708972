#!/usr/bin/env python
# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""BiRefNet end to end in one command: data, training, evaluation, pictures. Works offline on a laptop CPU.

    python examples/run_demo.py --output_dir outputs/demo

1. writes a synthetic dataset in the DIS5K layout (``birefnet_hf.data.generate_synthetic_dis5k``: thin wires,
   fences, bicycles, trees, baskets and gears on textured backgrounds; DIS-TR for training, DIS-TE1..4 held out);
2. builds a BiRefNet with a PVT-v2-b0 backbone from scratch (random weights, every component of the paper) and
   trains it with ``examples/train.py`` (the paper's loss and optimiser; one process, started as a user starts it);
3. evaluates the untrained and the trained model on the held-out DIS-TE1..4 images with the DIS metrics at the
   masks' resolution (predictions resized back bilinearly, as in the paper) and prints a table;
4. writes ``grid.png``: image | ground truth | untrained | trained, one row per DIS-TE level.

Outputs in ``--output_dir``: ``data/DIS5K``, ``initial_model/``, ``training/`` (train.py's output: ``final_model/``,
logs), ``results.json``, ``results.md``, ``grid.png``.

The defaults (128 pixels, 240 training images, 180 steps of 4 images) take about 4 minutes on 2 CPU cores. With a
GPU or a pretrained checkpoint the same command scales up, and any option it does not know goes to
``examples/train.py``::

    # a GPU, a larger model and resolution
    python examples/run_demo.py --output_dir outputs/demo-gpu --backbone swin_v1_t --use_pretrained_backbone \\
        --image_size 512 --synthetic_size 512 --num_train 1000 --max_train_steps 3000 --mixed_precision bf16
    # fine-tune a released checkpoint on your own DIS5K-layout data, with train.py's gradient checkpointing
    python examples/run_demo.py --output_dir outputs/finetune --dataset_dir /data/DIS5K \\
        --init_from ZhengPeng7/BiRefNet --image_size 1024 --max_train_steps 2000 --gradient_checkpointing
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from birefnet_hf.cpu_budget import configure_thread_waiting

# before torch loads its OpenMP runtime, which reads the wait policy once: idle threads sleep (shared CPUs, issue 19)
configure_thread_waiting()

import datasets
import numpy as np
import PIL.Image
import PIL.ImageDraw
import torch
from tqdm.auto import tqdm
from transformers.utils import logging

from birefnet_hf import BiRefNetConfig, BiRefNetForImageSegmentation, BiRefNetImageProcessor
from birefnet_hf.atomic_io import atomic_folder, write_bytes, write_text
from birefnet_hf.cpu_budget import apply_cpu_budget
from birefnet_hf.data import generate_synthetic_dis5k, load_dis5k, parse_dis5k_class_name
from birefnet_hf.metrics import METRIC_NAMES, DISMetrics, get_metric, is_better
from birefnet_hf.prediction import predict_mattes

logger = logging.get_logger("birefnet_hf.run_demo")

TEST_SPLITS = ("test_1", "test_2", "test_3", "test_4")


#: The training script, next to this file; the demo runs it as a user would.
TRAIN_SCRIPT = Path(__file__).with_name("train.py")


def run_train_script(train_args: list[str], output_dir: Path) -> dict:
    """Run ``examples/train.py train_args`` in its own Python process, as a user runs it, and return its summary
    (``output_dir/eval_results.json``); a failed run stops the demo with the script's exit code and command."""
    command = [sys.executable, str(TRAIN_SCRIPT), *train_args]
    returncode = subprocess.run(command, check=False).returncode
    if returncode != 0:
        raise SystemExit(f"examples/train.py failed with exit code {returncode}: {shlex.join(command)}")
    return json.loads((output_dir / "eval_results.json").read_text(encoding="utf-8"))


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        description="Synthetic data -> train BiRefNet -> evaluate trained vs untrained -> picture grid. "
        "Unknown options are passed on to examples/train.py.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--output_dir", type=Path, default=Path("outputs/demo"))
    parser.add_argument("--overwrite", action="store_true", help="delete a non-empty --output_dir first")
    parser.add_argument(
        "--dataset_dir", type=Path, default=None, help="use this DIS5K-layout set instead of synthetic data"
    )
    parser.add_argument("--synthetic_size", type=int, default=128, help="side of the synthetic images")
    parser.add_argument("--num_train", type=int, default=240, help="synthetic training images")
    parser.add_argument("--num_val", type=int, default=8, help="synthetic validation images")
    parser.add_argument(
        "--num_test", type=int, default=8, help="synthetic held-out images per DIS-TE level (4 levels)"
    )
    parser.add_argument("--backbone", default="pvt_v2_b0")
    parser.add_argument(
        "--use_pretrained_backbone", action="store_true", help="ImageNet backbone (downloads)"
    )
    parser.add_argument("--init_from", default=None, help="start from this model instead of random weights")
    parser.add_argument("--image_size", type=int, default=128, help="training and evaluation resolution")
    parser.add_argument("--per_device_train_batch_size", type=int, default=4)
    parser.add_argument("--max_train_steps", type=int, default=180)
    parser.add_argument(
        "--learning_rate", type=float, default=None, help="default: train.py's (authors') rule"
    )
    parser.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), default="no")
    parser.add_argument("--eval_batch_size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args, train_extra = parser.parse_known_args(argv)
    if args.image_size % 32:
        parser.error(f"--image_size must be a multiple of 32, got {args.image_size}")
    return args, train_extra


def build_initial_model(args: argparse.Namespace) -> BiRefNetForImageSegmentation:
    if args.init_from is not None:
        return BiRefNetForImageSegmentation.from_pretrained(args.init_from)
    torch.manual_seed(args.seed)
    config = BiRefNetConfig(backbone=args.backbone, use_pretrained_backbone=args.use_pretrained_backbone)
    return BiRefNetForImageSegmentation(config)


def predict_and_score(model, processor, dataset: datasets.Dataset, batch_size: int, keep: set[int], device):
    """DIS scores of ``model`` on ``dataset`` at the masks' resolution, and the predicted mattes of ``keep``
    (``birefnet_hf.prediction.predict_mattes``: the package's one prediction driver)."""
    model.eval().to(device)
    metrics = DISMetrics()
    kept = {}
    for start in tqdm(range(0, len(dataset), batch_size), desc="Evaluating", leave=False):
        examples = dataset[start : start + batch_size]
        mattes = predict_mattes(model, processor, examples["image"])
        for offset, (matte, mask) in enumerate(zip(mattes, examples["mask"], strict=True)):
            metrics.update(matte, np.asarray(mask) > 127)
            if start + offset in keep:
                kept[start + offset] = matte
    return metrics.compute(), kept


def results_table(untrained: dict[str, float], trained: dict[str, float]) -> str:
    lines = ["| metric | untrained | trained | trained better |", "|---|---:|---:|:---:|"]
    for name in METRIC_NAMES:
        before, after = untrained[name], trained[name]
        better = is_better(name, after, before)
        lines.append(
            f"| {name} {get_metric(name).arrow} | {before:.4f} | {after:.4f} | {'yes' if better else 'no'} |"
        )
    return "\n".join(lines)


def draw_grid(rows: list[list[PIL.Image.Image]], titles: list[str], cell: int = 160) -> PIL.Image.Image:
    """Rows of images side by side under a title line."""
    header = 20
    grid = PIL.Image.new("RGB", (cell * len(titles), header + cell * len(rows)), "white")
    draw = PIL.ImageDraw.Draw(grid)
    for column, title in enumerate(titles):
        draw.text((column * cell + 6, 4), title, fill="black")
    for row, images in enumerate(rows):
        for column, image in enumerate(images):
            grid.paste(
                image.convert("RGB").resize((cell, cell), PIL.Image.BILINEAR),
                (column * cell, header + row * cell),
            )
    return grid


def main(argv: list[str] | None = None) -> dict:
    args, train_extra = parse_args(argv)
    logging.set_verbosity_info()
    apply_cpu_budget()  # torch threads for the CPUs this process may use (affinity mask, cgroup quota)
    output_dir: Path = args.output_dir
    if output_dir.exists() and any(output_dir.iterdir()):
        if not args.overwrite:
            raise SystemExit(
                f"--output_dir {output_dir} is not empty; pass --overwrite or choose another folder"
            )
        shutil.rmtree(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    timings = {}

    # 1. data
    started = time.time()
    if args.dataset_dir is None:
        dataset_dir = generate_synthetic_dis5k(
            output_dir / "data", num_train=args.num_train, num_val=args.num_val, num_test=args.num_test,
            size=args.synthetic_size, seed=args.seed,
        )  # fmt: skip
    else:
        dataset_dir = args.dataset_dir
    held_out = load_dis5k(dataset_dir, splits=list(TEST_SPLITS))
    test_set = datasets.concatenate_datasets([held_out[split] for split in TEST_SPLITS])
    # The grid shows one image per DIS-TE level, of a different class in each row.
    grid_indices, offset = [], 0
    for level, split in enumerate(TEST_SPLITS):
        names = held_out[split]["file_name"]
        classes = list(dict.fromkeys(parse_dis5k_class_name(name) for name in names))
        wanted = classes[level % len(classes)]
        first = next(i for i, name in enumerate(names) if parse_dis5k_class_name(name) == wanted)
        grid_indices.append(offset + first)
        offset += len(names)
    timings["data_s"] = time.time() - started

    # 2. the starting point, saved so that train.py starts from exactly these weights
    initial = build_initial_model(args)
    initial_dir = output_dir / "initial_model"
    processor = BiRefNetImageProcessor(size={"height": args.image_size, "width": args.image_size})
    with atomic_folder(initial_dir) as staging:
        initial.save_pretrained(staging)
        processor.save_pretrained(staging)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    # 3. training
    started = time.time()
    train_args = [
        "--dataset_dir", str(dataset_dir), "--output_dir", str(output_dir / "training"),
        "--init_from", str(initial_dir), "--image_size", str(args.image_size),
        "--per_device_train_batch_size", str(args.per_device_train_batch_size),
        "--max_train_steps", str(args.max_train_steps), "--eval_every_epochs", "0",
        "--mixed_precision", args.mixed_precision, "--seed", str(args.seed), "--logging_steps", "10",
    ]  # fmt: skip
    if args.learning_rate is not None:
        train_args += ["--learning_rate", str(args.learning_rate)]
    summary = run_train_script(train_args + train_extra, output_dir / "training")
    timings["train_s"] = time.time() - started

    # 4. evaluation of both models on the held-out images
    started = time.time()
    trained = BiRefNetForImageSegmentation.from_pretrained(output_dir / "training" / "final_model")
    scores, mattes = {}, {}
    for name, model in (("untrained", initial), ("trained", trained)):
        scores[name], mattes[name] = predict_and_score(
            model, processor, test_set, args.eval_batch_size, set(grid_indices), device
        )
    timings["evaluate_s"] = time.time() - started

    table = results_table(scores["untrained"], scores["trained"])
    print(
        f"\nHeld-out DIS-TE1..4 ({len(test_set)} images, {args.image_size} px model input):\n{table}\n"
    )
    rows = []
    for index in grid_indices:
        example = test_set[index]
        rows.append(
            [example["image"], example["mask"]]
            + [PIL.Image.fromarray(mattes[k][index]) for k in ("untrained", "trained")]
        )
    grid = draw_grid(rows, ["image", "ground truth", "untrained", "trained"])
    buffer = io.BytesIO()
    grid.save(buffer, format="PNG")
    write_bytes(output_dir / "grid.png", buffer.getvalue())

    results = {
        "untrained": scores["untrained"],
        "trained": scores["trained"],
        "trained_better": {
            name: is_better(name, scores["trained"][name], scores["untrained"][name]) for name in METRIC_NAMES
        },
        "num_test_images": len(test_set),
        "train_steps": summary["completed_steps"],
        "timings_s": timings,
        "settings": {k: str(v) for k, v in vars(args).items()} | {"train_extra": train_extra},
    }  # fmt: skip
    write_text(output_dir / "results.json", json.dumps(results, indent=2))
    write_text(output_dir / "results.md", table + "\n")
    print(f"Wrote {output_dir / 'grid.png'}, {output_dir / 'results.md'} ({sum(timings.values()):.0f} s)")
    return results


if __name__ == "__main__":
    main()
    sys.exit(0)
