# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""transformers.js runs what `birefnet-hf publish --onnx` builds.

The published folder is loaded by transformers.js's own `background-removal` pipeline (Node.js, offline, local files
only; tests/js/background_removal.mjs), which reads `config.json`, `preprocessor_config.json` and
`onnx/model.onnx` / `onnx/model_fp16.onnx` from it; its matte is compared with this package's.

Needs Node.js and npm (Debian's `nodejs` and `npm` packages; .ci/run installs them) and the npm registry once:
transformers.js is installed into a cache folder (~/.cache/birefnet_hf-tests) on the first run.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from birefnet_hf import BiRefNetForImageSegmentation, BiRefNetImageProcessor
from birefnet_hf.onnx_export import FP16_PROBABILITY_TOLERANCE, TRANSFORMERS_JS_PROCESSOR_TYPE

pytestmark = pytest.mark.slow

JS_FOLDER = Path(__file__).parent / "js"
SIDE = 128


def _transformers_js_version() -> str:
    return json.loads((JS_FOLDER / "package.json").read_text())["dependencies"]["@huggingface/transformers"]


@pytest.fixture(scope="module")
def node_project() -> Path:
    """A folder with transformers.js installed (from the npm registry, once) and the test's script."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "this test needs Node.js and npm on PATH (Debian: apt-get install nodejs npm)"
    cache_root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    project = cache_root / "birefnet_hf-tests" / f"transformersjs-{_transformers_js_version()}"
    project.mkdir(parents=True, exist_ok=True)
    shutil.copy(JS_FOLDER / "package.json", project / "package.json")
    shutil.copy(JS_FOLDER / "background_removal.mjs", project / "background_removal.mjs")
    if not (project / "node_modules" / "@huggingface" / "transformers" / "package.json").exists():
        # onnxruntime-node ships its CPU binaries in the npm package; its install script would also fetch CUDA ones
        completed = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--onnxruntime-node-install-cuda=skip"],
            cwd=project, capture_output=True, text=True, timeout=900,
        )
        assert completed.returncode == 0, f"npm install failed:\n{completed.stdout}\n{completed.stderr}"
    return project


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """`birefnet-hf publish --onnx` of a random pvt_v2_b0 at a small native size, like a Hub repository."""
    from birefnet_hf.publish import _default_hub_configs, main

    root = tmp_path_factory.mktemp("publish")
    hub = root / "hub"
    shutil.copytree(_default_hub_configs() / "pvt_v2_b0", hub / "pvt_v2_b0")
    preprocessor = hub / "pvt_v2_b0" / "preprocessor_config.json"
    settings = json.loads(preprocessor.read_text())
    settings["size"] = {"height": SIDE, "width": SIDE}
    preprocessor.write_text(json.dumps(settings))
    output = root / "models"
    argv = ["--random-init", "--dry-run", "--output-dir", str(output), "--only", "pvt_v2_b0", "--hub-configs", str(hub),
            "--no-check-remote-code", "--onnx"]
    assert main(argv) == 0
    return output


def _photo(width: int, height: int) -> PIL.Image.Image:
    rng = np.random.default_rng(0)
    pixels = (rng.random((height, width, 3)) * 255).astype(np.uint8)
    pixels[height // 4 : 3 * height // 4, width // 3 : 2 * width // 3] = (200, 30, 30)
    return PIL.Image.fromarray(pixels)


def _transformers_js_alpha(node_project: Path, models: Path, image: Path, dtype: str, tmp_path: Path) -> np.ndarray:
    output = tmp_path / f"alpha-{dtype}.json"
    completed = subprocess.run(
        ["node", "background_removal.mjs", str(models), "pvt_v2_b0", str(image), str(output), dtype],
        cwd=node_project, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, f"transformers.js failed:\n{completed.stdout}\n{completed.stderr}"
    result = json.loads(output.read_text())
    return np.asarray(result["alpha"], dtype=np.int32).reshape(result["height"], result["width"])


def _our_alpha(folder: Path, image: PIL.Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """This package's 8-bit matte and the probabilities it comes from (both at the image's size)."""
    model = BiRefNetForImageSegmentation.from_pretrained(folder).eval()
    processor = BiRefNetImageProcessor.from_pretrained(folder)
    with torch.inference_mode():
        logits = model(**processor(images=image, return_tensors="pt")).logits
    size = [(image.height, image.width)]
    alpha = processor.post_process_alpha(logits, target_sizes=size, output_dtype=torch.uint8)[0]
    probabilities = processor.post_process_alpha(logits, target_sizes=size)[0]
    return np.asarray(alpha).astype(np.int32), np.asarray(probabilities, dtype=np.float64)


def test_preprocessor_config_is_readable_by_both_libraries(published):
    """transformers.js refuses unknown `image_processor_type`s: the repository names its processor the way both read."""
    from transformers import AutoImageProcessor

    folder = published / "pvt_v2_b0"
    settings = json.loads((folder / "preprocessor_config.json").read_text())
    assert "image_processor_type" not in settings
    assert settings["feature_extractor_type"] == TRANSFORMERS_JS_PROCESSOR_TYPE
    processor = AutoImageProcessor.from_pretrained(folder)
    assert isinstance(processor, BiRefNetImageProcessor)
    assert processor.size == {"height": SIDE, "width": SIDE}
    assert sorted(path.name for path in (folder / "onnx").iterdir()) == ["model.onnx", "model_fp16.onnx"]


def test_transformers_js_background_removal_matches_ours(node_project, published, tmp_path):
    """At the native size (no resizing of the matte on either side) transformers.js's float32 cut-out has the same
    alpha as ours to one 8-bit level (it truncates probability x 255, this package rounds); the float16 file stays
    within the float16 export's stated probability tolerance."""
    image = _photo(SIDE, SIDE)
    path = tmp_path / "photo.png"
    image.save(path)
    ours, probabilities = _our_alpha(published / "pvt_v2_b0", image)
    assert ours.max() - ours.min() >= 10, "the random model's matte must vary for the comparison to mean anything"

    alpha = _transformers_js_alpha(node_project, published, path, "fp32", tmp_path)
    assert alpha.shape == (SIDE, SIDE)
    assert np.abs(alpha - ours).max() <= 1
    assert np.abs(alpha - np.floor(probabilities * 255)).max() <= 1

    alpha16 = _transformers_js_alpha(node_project, published, path, "fp16", tmp_path)
    assert np.abs(alpha16 - ours).max() <= int(np.ceil(255 * FP16_PROBABILITY_TOLERANCE)) + 1


def test_transformers_js_resizes_the_matte_to_the_photo(node_project, published, tmp_path):
    """A photo of another size and aspect: transformers.js returns its matte at the photo's size, close to ours inside
    the image. Both resize the model's matte bilinearly, but transformers.js resizes the 8-bit matte with sharp
    (pixel centres, edge pixels extrapolated) where this package and the authors resize probabilities with
    ``align_corners=True``, so the outermost rows and columns differ by design and are left out."""
    image = _photo(200, 150)
    path = tmp_path / "photo.png"
    image.save(path)
    ours, _ = _our_alpha(published / "pvt_v2_b0", image)
    alpha = _transformers_js_alpha(node_project, published, path, "fp32", tmp_path)
    assert alpha.shape == (150, 200)
    interior = np.abs(alpha - ours)[3:-3, 3:-3]
    print(f"interior |alpha difference|: mean {interior.mean():.2f}, max {interior.max()}")
    assert interior.mean() <= 1.5
    assert interior.max() <= 12
