# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Tests of birefnet_hf.data: DIS5K / im-gt / Hub loading, export, transforms, collation, synthetic data."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path

import datasets
import numpy as np
import PIL.Image
import pytest
import torch
from torch.utils.data import DataLoader

from birefnet_hf.data import (
    IGNORE_INDEX,
    DatasetLayoutError,
    DISCollator,
    dis5k_class_names,
    generate_synthetic_dis5k,
    image_mask_features,
    load_dis5k,
    load_hub_dataset,
    load_image_mask_folder,
    make_eval_transform,
    make_train_transform,
)
from birefnet_hf.data.export import export_dataset
from birefnet_hf.data.synthetic import SYNTHETIC_CLASSES
from birefnet_hf.data.synthetic import main as synthetic_main

REPO_ROOT = Path(__file__).resolve().parents[1]
SPLITS = ["train", "validation", "test_1", "test_2", "test_3", "test_4"]
FOLDERS = ["DIS-TR", "DIS-VD", "DIS-TE1", "DIS-TE2", "DIS-TE3", "DIS-TE4"]
SIZE = 64
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    """A small synthetic DIS5K (read-only for tests: copy it before modifying)."""
    return generate_synthetic_dis5k(
        tmp_path_factory.mktemp("synthetic"),
        num_train=12,
        num_val=3,
        num_test=2,
        size=SIZE,
        seed=0,
        progress=False,
    )


@pytest.fixture()
def dis5k_copy(synthetic_root, tmp_path) -> Path:
    """A modifiable copy of the synthetic DIS5K."""
    return Path(shutil.copytree(synthetic_root, tmp_path / "DIS5K"))


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def load_example_script(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", REPO_ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------- synthetic + DIS5K


def test_class_names_match_shared_list():
    names = dis5k_class_names()
    packaged = (REPO_ROOT / "birefnet_hf" / "data" / "class_names.txt").read_text().split()
    assert len(names) == 219 and list(names) == packaged
    assert list(names) == sorted(set(names))  # sorted, distinct: ids are positions in this order
    assert names.index("Airplane") == 0 and names.index("Yacht") == 218
    for synthetic_class in SYNTHETIC_CLASSES:
        assert synthetic_class.name in names


def test_synthetic_set_loads_with_splits_features_and_labels(synthetic_root):
    dis5k = load_dis5k(synthetic_root)
    assert list(dis5k) == SPLITS
    assert {split: len(dis5k[split]) for split in SPLITS} == {
        "train": 12,
        "validation": 3,
        "test_1": 2,
        "test_2": 2,
        "test_3": 2,
        "test_4": 2,
    }
    features = dis5k["train"].features
    assert features == image_mask_features()
    assert isinstance(features["image"], datasets.Image) and features["image"].mode == "RGB"
    assert isinstance(features["mask"], datasets.Image) and features["mask"].mode == "L"
    assert features["label"].names == list(dis5k_class_names())
    # every class of the generator appears in training, and labels follow the file names
    train = dis5k["train"]
    assert {features["label"].int2str(label) for label in train["label"]} == {
        c.name for c in SYNTHETIC_CLASSES
    }
    for example in train:
        assert example["file_name"].split("#")[3] == features["label"].int2str(example["label"])
        assert example["image"].mode == "RGB" and example["image"].size == (SIZE, SIZE)
        mask = np.asarray(example["mask"])
        assert example["mask"].mode == "L" and mask.shape == (SIZE, SIZE)
        assert set(np.unique(mask)) <= {0, 255}
        assert 0.002 < (mask > 0).mean() < 0.9  # a real object, not the whole image
    # the parent folder works too, and a subset of splits by either naming
    subset = load_dis5k(synthetic_root.parent, splits=["DIS-TE2", "validation"])
    assert list(subset) == ["test_2", "validation"] and len(subset["test_2"]) == 2


def test_synthetic_objects_differ_in_colour_from_background(synthetic_root):
    """Foreground colours are statistically distinct from the background (so the task is learnable)."""
    train = load_dis5k(synthetic_root, splits=["train"])["train"]
    separations = []
    for example in train:
        image = np.asarray(example["image"], dtype=np.float32)
        mask = np.asarray(example["mask"]) > 127
        separations.append(np.linalg.norm(image[mask].mean(0) - image[~mask].mean(0)))
    assert np.median(separations) > 25.0


def test_synthetic_task_is_learnable_by_a_tiny_model(tmp_path):
    """A 3-layer conv net trained for a few seconds segments the held-out test splits far better than untrained."""
    root = generate_synthetic_dis5k(
        tmp_path, num_train=48, num_val=1, num_test=6, size=SIZE, seed=0, progress=False
    )
    dis5k = load_dis5k(root)
    collator = DISCollator()
    test = collator(
        [
            example
            for split in SPLITS[2:]
            for example in dis5k[split].with_transform(make_eval_transform(SIZE))
        ]
    )
    train = DataLoader(
        dis5k["train"].with_transform(make_train_transform(SIZE)),
        batch_size=8,
        shuffle=True,
        collate_fn=collator,
    )

    def test_iou(model: torch.nn.Module) -> float:
        with torch.no_grad():
            predicted, truth = model(test["pixel_values"]) > 0, test["labels"] > 0.5
        return float((predicted & truth).sum() / (predicted | truth).sum())

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 1, 1),
    )  # fmt: skip
    untrained = test_iou(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(8):
        for batch in train:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                model(batch["pixel_values"]), batch["labels"]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    trained = test_iou(model)
    assert trained > 0.5 and trained > untrained + 0.3, (untrained, trained)


def test_synthetic_is_deterministic_per_seed(tmp_path):
    arguments = dict(num_train=3, num_val=1, num_test=1, size=48, progress=False)
    first = generate_synthetic_dis5k(tmp_path / "a", seed=7, **arguments)
    second = generate_synthetic_dis5k(tmp_path / "b", seed=7, **arguments)
    other = generate_synthetic_dis5k(tmp_path / "c", seed=8, **arguments)
    assert first.name == "DIS5K"
    digest = tree_digest(first)
    assert len(digest) == 2 * (3 + 1 + 4)
    assert digest == tree_digest(second)
    other_digest = tree_digest(other)
    assert digest.keys() == other_digest.keys()
    assert all(digest[name] != other_digest[name] for name in digest if name.endswith(".jpg"))


def test_synthetic_cli_refuses_non_empty_output_and_overwrites_atomically(tmp_path, capsys):
    output = tmp_path / "out"
    output.mkdir()
    (output / "keep.txt").write_text("user file")
    arguments = [
        "--output-dir",
        str(output),
        "--num-train",
        "2",
        "--num-val",
        "1",
        "--num-test",
        "1",
        "--size",
        "32",
        "--no-progress",
    ]
    with pytest.raises(SystemExit):
        synthetic_main(arguments)
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in output.iterdir()) == ["keep.txt"]

    from birefnet_hf.cli import main as cli_main

    assert cli_main(["synthetic", *arguments, "--overwrite"]) == 0
    assert synthetic_main([*arguments, "--overwrite", "--seed", "1"]) == 0
    # only the DIS5K tree and the user's file: no temporary files or folders left behind
    assert sorted(p.name for p in output.iterdir()) == ["DIS5K", "keep.txt"]
    leftovers = [p for p in output.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []
    assert len(load_dis5k(output)["test_4"]) == 1


# ------------------------------------------------------------------------------------------------ error cases


def test_missing_mask_is_an_error_naming_the_image(dis5k_copy):
    victim = sorted((dis5k_copy / "DIS-TR" / "gt").iterdir())[3]
    victim.unlink()
    with pytest.raises(DatasetLayoutError, match="missing mask") as error:
        load_dis5k(dis5k_copy)
    assert victim.stem + ".jpg" in str(error.value)


def test_extra_mask_is_an_error_naming_it(dis5k_copy):
    extra = dis5k_copy / "DIS-VD" / "gt" / "1#Electronics#1#Cable#orphan.png"
    PIL.Image.new("L", (SIZE, SIZE)).save(extra)
    with pytest.raises(DatasetLayoutError, match="extra mask") as error:
        load_dis5k(dis5k_copy)
    assert str(extra) in str(error.value)


def test_size_mismatch_is_an_error_naming_both_files(dis5k_copy):
    mask_path = sorted((dis5k_copy / "DIS-TE3" / "gt").iterdir())[0]
    PIL.Image.new("L", (SIZE + 3, SIZE)).save(mask_path)
    with pytest.raises(DatasetLayoutError, match="size mismatch") as error:
        load_dis5k(dis5k_copy)
    assert str(mask_path) in str(error.value) and mask_path.stem + ".jpg" in str(error.value)
    # the check can be turned off
    assert len(load_dis5k(dis5k_copy, check_sizes=False)["test_3"]) == 2


def _rename_pair(split_folder: Path, index: int, new_stem: str) -> None:
    image = sorted((split_folder / "im").iterdir())[index]
    mask = split_folder / "gt" / f"{image.stem}.png"
    image.rename(split_folder / "im" / f"{new_stem}.jpg")
    mask.rename(split_folder / "gt" / f"{new_stem}.png")


def test_unknown_class_name_is_an_error_naming_the_file(dis5k_copy):
    _rename_pair(dis5k_copy / "DIS-TR", 0, "9#Stuff#1#Flubber#abc")
    with pytest.raises(DatasetLayoutError, match="unknown DIS5K class 'Flubber'") as error:
        load_dis5k(dis5k_copy)
    assert "9#Stuff#1#Flubber#abc.jpg" in str(error.value)


def test_non_dis5k_file_name_is_an_error(dis5k_copy):
    _rename_pair(dis5k_copy / "DIS-TR", 1, "plain_name")
    with pytest.raises(DatasetLayoutError, match="not a DIS5K file name") as error:
        load_dis5k(dis5k_copy)
    assert "plain_name.jpg" in str(error.value)


def test_evaluation_splits_give_classes_outside_training_label_minus_one(dis5k_copy):
    _rename_pair(dis5k_copy / "DIS-VD", 0, "9#Stuff#1#Flubber#abc")
    validation = load_dis5k(dis5k_copy, splits=["validation"])["validation"]
    labels = dict(zip(validation["file_name"], validation["label"], strict=True))
    assert labels["9#Stuff#1#Flubber#abc.jpg"] == -1
    assert sum(label >= 0 for label in labels.values()) == 2


def test_missing_split_is_an_error_unless_splits_are_given(dis5k_copy, tmp_path):
    shutil.rmtree(dis5k_copy / "DIS-TE4")
    with pytest.raises(FileNotFoundError, match="DIS-TE4") as error:
        load_dis5k(dis5k_copy)
    assert "splits=" in str(error.value)
    assert list(load_dis5k(dis5k_copy, splits=SPLITS[:5])) == SPLITS[:5]
    with pytest.raises(ValueError, match="Unknown DIS5K split"):
        load_dis5k(dis5k_copy, splits=["test_9"])
    with pytest.raises(FileNotFoundError, match="not a DIS5K folder"):
        load_dis5k(tmp_path / "DIS5K" / "DIS-TR")


# ---------------------------------------------------------------------------------------------- other im/gt sets


def _write_pair(
    folder: Path, stem: str, image_ext: str, mask_ext: str, size=(40, 30), exif_orientation=None
) -> None:
    (folder / "im").mkdir(parents=True, exist_ok=True)
    (folder / "gt").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(stem))
    image = PIL.Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    if exif_orientation is not None:
        exif = PIL.Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(folder / "im" / f"{stem}{image_ext}", exif=exif)
    else:
        image.save(folder / "im" / f"{stem}{image_ext}")
    mask_size = size[::-1] if exif_orientation in (5, 6, 7, 8) else size
    mask = np.zeros((mask_size[1], mask_size[0]), dtype=np.uint8)
    mask[5:20, 5:20] = 255
    PIL.Image.fromarray(mask).save(folder / "gt" / f"{stem}{mask_ext}")


def test_image_mask_folder_with_mixed_extensions_and_labels(tmp_path):
    hrsod = tmp_path / "TE-HRSOD"
    _write_pair(hrsod, "a", ".png", ".png")
    _write_pair(hrsod, "b", ".bmp", ".bmp")
    _write_pair(hrsod, "c", ".webp", ".jpg")
    _write_pair(hrsod, "d", ".jpeg", ".png")
    _write_pair(hrsod, "1#Electronics#1#Cable#e", ".jpg", ".png")
    _write_pair(
        hrsod, "rotated", ".jpg", ".png", exif_orientation=6
    )  # the mask matches the *displayed* image
    (hrsod / "im" / ".DS_Store").write_bytes(b"\0")
    dataset = load_image_mask_folder(hrsod)
    assert isinstance(dataset, datasets.Dataset) and dataset.features == image_mask_features()
    assert dataset["file_name"] == [
        "1#Electronics#1#Cable#e.jpg",
        "a.png",
        "b.bmp",
        "c.webp",
        "d.jpeg",
        "rotated.jpg",
    ]
    assert dataset["label"] == [dis5k_class_names().index("Cable"), -1, -1, -1, -1, -1]
    for example in dataset:
        assert example["image"].mode == "RGB" and example["mask"].mode == "L"
        assert example["image"].size == example["mask"].size

    cod = tmp_path / "COD"
    _write_pair(cod, "x", ".jpg", ".png")
    both = load_image_mask_folder([hrsod, cod])
    assert isinstance(both, datasets.DatasetDict) and list(both) == ["TE_HRSOD", "COD"]
    assert len(both["COD"]) == 1
    # same features, so sets concatenate (as for the authors' multi-set training)
    assert len(datasets.concatenate_datasets([both["TE_HRSOD"], both["COD"]])) == 7


def test_image_mask_folder_errors(tmp_path):
    folder = tmp_path / "set"
    _write_pair(folder, "a", ".jpg", ".png")
    _write_pair(folder, "b", ".jpg", ".png")
    _write_pair(folder, "a", ".png", ".bmp")  # a second "a" image and mask
    (folder / "gt" / "b.png").unlink()
    with pytest.raises(DatasetLayoutError) as error:
        load_image_mask_folder(folder)
    message = str(error.value)
    assert "ambiguous" in message and "a.jpg" in message and "a.png" in message
    assert "missing mask for image" in message and "b.jpg" in message
    with pytest.raises(FileNotFoundError, match="gt"):
        load_image_mask_folder(tmp_path / "nowhere")


# ------------------------------------------------------------------------------------------- Hub-name loading


def test_hub_dataset_loading_with_column_mapping(synthetic_root, tmp_path):
    source = load_dis5k(synthetic_root, splits=["validation"])["validation"]
    categories = [name.split("#")[3] for name in source["file_name"]]
    categories[0] = "NotADis5kClass"
    custom = datasets.Dataset.from_dict(
        {
            "photo": source["image"],
            "matte": source["mask"],
            "category": categories,
            "extra": list(range(len(source))),
        },
        features=datasets.Features(
            {
                "photo": datasets.Image(),
                "matte": datasets.Image(),
                "category": datasets.Value("string"),
                "extra": datasets.Value("int64"),
            }
        ),
    )
    repo = export_dataset(datasets.DatasetDict({"train": custom}), tmp_path / "hub_like", progress=False)
    cache = tmp_path / "cache"
    loaded = load_hub_dataset(
        str(repo),
        image_column="photo",
        mask_column="matte",
        label_column="category",
        split="train",
        cache_dir=str(cache),
    )
    assert isinstance(loaded, datasets.Dataset)
    assert loaded.features == image_mask_features()
    names = dis5k_class_names()
    assert loaded["label"] == [-1] + [names.index(c) for c in categories[1:]]
    assert loaded["file_name"] == [f"train-{i:06d}" for i in range(len(source))]
    for original, mapped in zip(source, loaded, strict=True):
        np.testing.assert_array_equal(np.asarray(original["image"]), np.asarray(mapped["image"]))
        np.testing.assert_array_equal(np.asarray(original["mask"]), np.asarray(mapped["mask"]))
    with pytest.raises(ValueError, match="image_column='image' is not a column.*photo"):
        load_hub_dataset(str(repo), split="train", cache_dir=str(cache))


def test_hub_dataset_configuration_is_selected(synthetic_root, tmp_path):
    """A repository with several configurations (README ``configs``): ``config_name`` picks one, in the library
    and in examples/train.py (``--dataset_config_name``)."""
    source = load_dis5k(synthetic_root, splits=["validation"])["validation"]
    repo = tmp_path / "two_configs"
    sizes = {"small": 1, "large": 3}  # the synthetic validation split has 3 images
    for config, count in sizes.items():
        for split in ("train", "validation"):
            folder = repo / config / split
            folder.mkdir(parents=True)
            source.select(range(count)).to_parquet(str(folder / "data.parquet"))
    lines = ["---", "configs:"]
    for config in sizes:
        lines += [f"- config_name: {config}", "  data_files:"]
        lines += [f"  - split: {split}\n    path: {config}/{split}/*.parquet" for split in ("train", "validation")]
    (repo / "README.md").write_text("\n".join(lines + ["---", ""]))
    cache = str(tmp_path / "cache")
    for config, count in sizes.items():
        loaded = load_hub_dataset(str(repo), config_name=config, split="train", cache_dir=cache)
        assert len(loaded) == count and loaded.features == image_mask_features()
    with pytest.raises(ValueError, match="small|large"):
        load_hub_dataset(str(repo), config_name="medium", split="train", cache_dir=cache)

    train_script = load_example_script("train")
    args = train_script.parse_args(
        ["--dataset_name", str(repo), "--dataset_config_name", "large", "--output_dir", str(tmp_path / "out")]
    )
    train, validation = train_script.load_splits(args)
    assert (len(train), len(validation)) == (3, 3)


# ------------------------------------------------------------------------------------------------------ export


@pytest.mark.parametrize("export_format", ["parquet", "arrow"])
def test_export_round_trips_without_the_source_files(synthetic_root, tmp_path, export_format):
    source_root = Path(shutil.copytree(synthetic_root, tmp_path / "source" / "DIS5K"))
    original = load_dis5k(source_root)
    pixels = {
        split: [
            (np.asarray(ex["image"]), np.asarray(ex["mask"]), ex["label"], ex["file_name"])
            for ex in original[split]
        ]
        for split in original
    }
    output = tmp_path / "exported"
    script = load_example_script("prepare_dataset")
    assert (
        script.main(
            [
                "--dataset-root",
                str(source_root.parent),
                "--output-dir",
                str(output),
                "--format",
                export_format,
                "--no-progress",
            ]
        )
        == 0
    )
    shutil.rmtree(tmp_path / "source")
    if export_format == "parquet":
        assert (output / "README.md").is_file() and (
            output / "data" / "train-00000-of-00001.parquet"
        ).is_file()
        reloaded = load_hub_dataset(str(output), cache_dir=str(tmp_path / "cache"))
    else:
        reloaded = datasets.load_from_disk(str(output))
    assert list(reloaded) == SPLITS
    for split in SPLITS:
        assert reloaded[split].features == image_mask_features()
        assert len(reloaded[split]) == len(pixels[split])
        for (image, mask, label, file_name), example in zip(pixels[split], reloaded[split], strict=True):
            np.testing.assert_array_equal(image, np.asarray(example["image"]))
            np.testing.assert_array_equal(mask, np.asarray(example["mask"]))
            assert (label, file_name) == (example["label"], example["file_name"])
    # refuses to overwrite without --overwrite
    with pytest.raises(SystemExit):
        script.main(["--dataset-root", str(tmp_path), "--output-dir", str(output)])


def test_prepare_dataset_push_to_hub_is_wired(synthetic_root, monkeypatch):
    calls = []

    def record_push(self, repo_id, **kwargs):
        calls.append((self, repo_id, kwargs))

    monkeypatch.setattr(datasets.DatasetDict, "push_to_hub", record_push)
    script = load_example_script("prepare_dataset")
    assert (
        script.main(
            [
                "--dataset-root",
                str(synthetic_root),
                "--splits",
                "train",
                "test_1",
                "--push_to_hub",
                "someone/dis5k-synthetic",
                "--private",
            ]
        )
        == 0
    )
    ((pushed, repo_id, kwargs),) = calls
    assert (
        repo_id == "someone/dis5k-synthetic" and kwargs["private"] is True and kwargs["embed_external_files"]
    )
    assert list(pushed) == ["train", "test_1"] and pushed["train"].features == image_mask_features()


# -------------------------------------------------------------------------------------------------- transforms


def _thresholded_pair(height=96, width=128, seed=0):
    """An image whose red channel is a smooth field, and the mask = red >= 128 (so it can be recomputed)."""
    rng = np.random.default_rng(seed)
    field = PIL.Image.fromarray(rng.random((5, 7), dtype=np.float32), mode="F").resize(
        (width, height), PIL.Image.BICUBIC
    )
    red = np.clip(np.asarray(field) * 255, 0, 255).astype(np.uint8)
    other = rng.integers(0, 255, (height, width, 2), dtype=np.uint8)
    image = PIL.Image.fromarray(np.dstack([red, other]))
    mask = PIL.Image.fromarray(np.where(red >= 128, 255, 0).astype(np.uint8))
    return image, mask


def _red(pixel_values: torch.Tensor) -> torch.Tensor:
    return (pixel_values * STD + MEAN)[0]


def test_geometric_augmentations_keep_image_and_mask_aligned():
    image, mask = _thresholded_pair()
    transform = make_train_transform(
        (64, 96), hflip=True, rotate=True, crop=True, hflip_probability=1.0, rotate_probability=1.0
    )
    reference = make_eval_transform((64, 96)).transform_pair(image, mask)[1]
    changed = 0
    for seed in range(6):
        torch.manual_seed(seed)
        pixel_values, labels = transform.transform_pair(image, mask)
        assert pixel_values.shape == (3, 64, 96) and pixel_values.dtype == torch.float32
        assert labels.shape == (1, 64, 96) and labels.dtype == torch.float32
        assert 0.0 <= float(labels.min()) and float(labels.max()) <= 1.0
        from_image = _red(pixel_values) >= 0.5
        from_mask = labels[0] >= 0.5
        # rotation fills with zeros: count those pixels as background in both
        assert float((from_image != from_mask).float().mean()) < 0.03
        changed += float((from_mask != (reference[0] >= 0.5)).float().mean()) > 0.05
    assert changed >= 4  # the augmentations did move things (flip always does)


def test_flip_is_exact_and_photometric_augmentations_leave_the_mask_alone():
    image, mask = _thresholded_pair()
    plain_pixels, plain_labels = make_eval_transform((64, 96)).transform_pair(image, mask)
    flipped_pixels, flipped_labels = make_train_transform((64, 96), hflip_probability=1.0).transform_pair(
        image, mask
    )
    torch.testing.assert_close(flipped_pixels, plain_pixels.flip(-1))
    torch.testing.assert_close(flipped_labels, plain_labels.flip(-1))
    never = make_train_transform((64, 96), hflip_probability=0.0).transform_pair(image, mask)
    torch.testing.assert_close(never[0], plain_pixels)

    torch.manual_seed(0)
    photometric = make_train_transform(
        (64, 96), hflip=False, color_enhance=True, pepper=True, pepper_fraction=0.05
    )
    pixel_values, labels = photometric.transform_pair(image, mask)
    torch.testing.assert_close(labels, plain_labels)
    assert float((pixel_values - plain_pixels).abs().mean()) > 0.05
    rgb = (pixel_values * STD + MEAN).mul(255).round()
    salt_or_pepper = ((rgb == 0).all(0) | (rgb == 255).all(0)).float().mean()
    assert 0.02 < float(salt_or_pepper) < 0.08


@pytest.mark.parametrize("factor", [0.0, 0.4, 1.0, 2.7])
def test_sharpness_matches_pil_image_enhance(factor):
    import PIL.ImageEnhance

    from birefnet_hf.data.transforms import adjust_sharpness

    image = PIL.Image.fromarray(np.random.default_rng(1).integers(0, 256, (37, 29, 3), dtype=np.uint8))
    ours = (
        adjust_sharpness(torch.from_numpy(np.array(image)).permute(2, 0, 1), factor).permute(1, 2, 0).numpy()
    )
    expected = np.asarray(PIL.ImageEnhance.Sharpness(image).enhance(factor))
    assert np.abs(ours.astype(int) - expected.astype(int)).max() <= 1


def test_transforms_through_with_transform_and_eval_rounding(synthetic_root):
    train = load_dis5k(synthetic_root, splits=["train"])["train"]
    example = train.with_transform(make_train_transform(32, crop=True, rotate=True))[0]
    assert set(example) == {"pixel_values", "labels", "original_size", "class_labels", "file_name"}
    assert example["pixel_values"].shape == (3, 32, 32) and example["original_size"] == (SIZE, SIZE)
    assert example["class_labels"] == train[0]["label"]

    image, mask = _thresholded_pair(height=100, width=70)
    evaluated = make_eval_transform(None)({"image": [image], "mask": [mask]})
    assert evaluated["pixel_values"][0].shape == (3, 96, 64) and evaluated["original_size"] == [(100, 70)]
    with pytest.raises(ValueError, match="bad.png differ in size"):
        make_eval_transform(64).transform_pair(image, mask.resize((10, 10)), file_name="bad.png")


# -------------------------------------------------------------------------------------------------- collation


def _examples(sizes, labels):
    return [
        {
            "pixel_values": torch.randn(3, h, w),
            "labels": torch.rand(1, h, w),
            "class_labels": label,
            "file_name": f"{i}.jpg",
            "original_size": (h * 2, w * 2),
        }
        for i, ((h, w), label) in enumerate(zip(sizes, labels, strict=True))
    ]


def test_collator_fixed_size_and_class_labels():
    batch = DISCollator()(_examples([(32, 64)] * 3, [5, -1, 7]))
    assert set(batch) == {"pixel_values", "labels", "class_labels"}
    assert batch["pixel_values"].shape == (3, 3, 32, 64) and batch["labels"].shape == (3, 1, 32, 64)
    assert batch["class_labels"].dtype == torch.long and batch["class_labels"].tolist() == [
        5,
        IGNORE_INDEX,
        7,
    ]
    assert "class_labels" not in DISCollator()(_examples([(32, 32)] * 2, [-1, -1]))
    with_metadata = DISCollator(return_metadata=True)(_examples([(32, 32)] * 2, [1, 2]))
    assert (
        with_metadata["file_names"] == ["0.jpg", "1.jpg"]
        and with_metadata["original_sizes"].tolist() == [[64, 64]] * 2
    )
    with pytest.raises(ValueError, match="different sizes"):
        DISCollator()(_examples([(32, 32), (64, 32)], [1, 2]))
    with pytest.raises(KeyError, match="with_transform"):
        DISCollator()([{"image": None}])


def test_collator_dynamic_sizes_are_multiples_of_32_shared_within_a_batch():
    torch.manual_seed(0)
    collator = DISCollator(dynamic_size=(64, 160))
    heights, widths = set(), set()
    for _ in range(30):
        batch = collator(_examples([(40, 50), (70, 30), (64, 64)], [1, 2, 3]))
        height, width = batch["pixel_values"].shape[-2:]
        assert batch["labels"].shape == (3, 1, height, width)
        assert height % 32 == 0 and width % 32 == 0 and 64 <= height <= 160 and 64 <= width <= 160
        assert 0.0 <= float(batch["labels"].min()) and float(batch["labels"].max()) <= 1.0
        heights.add(height)
        widths.add(width)
    assert heights == widths == {64, 96, 128, 160}
    separate = DISCollator(dynamic_size=((32, 32), (200, 260)))
    assert {separate.sample_size() for _ in range(40)} == {(32, 224), (32, 256)}
    for bad in [(10, 20), (200, 100), (1, 2, 3)]:
        with pytest.raises(ValueError):
            DISCollator(dynamic_size=bad)


def test_dataloader_end_to_end_on_synthetic(synthetic_root):
    train = load_dis5k(synthetic_root, splits=["train"])["train"]
    train = train.with_transform(
        make_train_transform(64, rotate=True, color_enhance=True, crop=True, pepper=True)
    )
    loader = DataLoader(train, batch_size=4, shuffle=True, collate_fn=DISCollator(dynamic_size=(32, 96)))
    batches = list(loader)
    assert len(batches) == 3
    for batch in batches:
        assert batch["pixel_values"].ndim == 4 and batch["pixel_values"].shape[1] == 3
        assert batch["labels"].shape[1] == 1 and batch["class_labels"].shape == (4,)
        assert float(batch["labels"].max()) > 0.5  # objects survive the augmentations


# ------------------------------------------------------------------------------------------ 0/1 masks (issue 13)
def test_zero_one_masks_are_scaled_with_a_warning_naming_the_file(tmp_path, caplog):
    from birefnet_hf.data import load_image_mask_folder, mask_to_uint8

    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 1
    (tmp_path / "im").mkdir()
    (tmp_path / "gt").mkdir()
    PIL.Image.new("RGB", (32, 32), (90, 120, 30)).save(tmp_path / "im" / "zero_one.jpg")
    PIL.Image.fromarray(mask).save(tmp_path / "gt" / "zero_one.png")  # a PNG holding 0/1
    split = load_image_mask_folder(tmp_path).with_transform(make_eval_transform(image_size=32))
    with caplog.at_level("WARNING"):
        labels = split[0]["labels"]
    assert "zero_one" in caplog.text and "0/1 mask" in caplog.text
    assert labels.shape == (1, 32, 32) and labels[0, 16, 16] == 1.0 and labels[0, 0, 0] == 0.0
    assert labels.sum() == 16 * 16  # not 16 * 16 / 255
    # Arrays: 0/1 uint8, bool, int64 and float masks give the same 0/255 mask; a real 0/255 mask is unchanged.
    expected = torch.from_numpy(mask * 255)[None]
    for array in (mask, mask.astype(bool), mask.astype(np.int64), mask.astype(np.float32), mask * 255):
        assert torch.equal(mask_to_uint8(array, "x.png"), expected), array.dtype
    assert torch.equal(mask_to_uint8(np.zeros((4, 4), np.uint8)), torch.zeros(1, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="x.png.*outside"):
        mask_to_uint8(np.full((4, 4), 2.0), "x.png")
    with pytest.raises(ValueError, match="x.png.*NaN"):
        mask_to_uint8(np.full((4, 4), np.nan), "x.png")


def test_export_dataset_arrow_round_trip_and_overwrite_leaves_nothing_behind(tmp_path):
    """``format="arrow"``: the folder loads with ``datasets.load_from_disk``; re-exporting with ``overwrite`` swaps
    the whole folder and leaves no staging or backup folder beside it."""
    dataset = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"value": [1, 2, 3]})})
    output = tmp_path / "exported"
    export_dataset(dataset, output, format="arrow", progress=False)
    assert datasets.load_from_disk(str(output))["train"]["value"] == [1, 2, 3]
    bigger = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"value": [4, 5, 6, 7]})})
    with pytest.raises(FileExistsError, match="exported"):
        export_dataset(bigger, output, format="arrow", progress=False)
    export_dataset(bigger, output, format="arrow", progress=False, overwrite=True)
    assert datasets.load_from_disk(str(output))["train"]["value"] == [4, 5, 6, 7]
    assert [path.name for path in tmp_path.iterdir()] == ["exported"]
