# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The remote-code check of ``birefnet-hf publish``: does a built Hub folder work for someone who only has
transformers, through ``trust_remote_code=True``?

:func:`check_remote_code` (in the publishing process) runs this very file as a script in a fresh, isolated Python
process (``python -I remote_check.py FOLDER OUT_DIR SIDE``: no user site, no ``PYTHON*`` variables, an empty working
directory, a temporary ``HF_MODULES_CACHE``, offline) and compares what it reports and saves with this package's
model. The script part, :func:`main`, first installs an import blocker for ``birefnet_hf``, then loads the folder
with ``AutoModelForImageSegmentation`` and ``AutoImageProcessor`` (``trust_remote_code=True``), runs the model and
the ``image-segmentation`` pipeline on a small random image, saves the pixel values and logits to ``OUT_DIR`` and
prints a one-line JSON report.

The file is run by path, not with ``python -m birefnet_hf.publishing.remote_check``, because ``-m`` imports the
``birefnet_hf`` package first, which the check exists to exclude. For the same reason it imports nothing from
``birefnet_hf`` (no relative imports) and nothing but the standard library at module level.
"""

from __future__ import annotations

import importlib.abc
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["CHECK_SIZE", "check_remote_code", "main"]

#: Side of the images used by the remote-code check (small: the check is about loading, not accuracy).
CHECK_SIZE = 64


class _BlockBirefnetHf(importlib.abc.MetaPathFinder):
    """Refuses every import of ``birefnet_hf``: the folder's code must work without the package."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "birefnet_hf" or name.startswith("birefnet_hf."):
            raise ImportError("birefnet_hf is blocked in the remote-code check")
        return None


def main(argv: list[str] | None = None) -> int:
    """The child process: ``FOLDER OUT_DIR SIDE``. Loads ``FOLDER`` with ``trust_remote_code=True`` (``birefnet_hf``
    blocked), saves ``pixel_values.npy`` and ``logits.npy`` to ``OUT_DIR`` and prints the JSON report."""
    sys.meta_path.insert(0, _BlockBirefnetHf())
    folder, out_dir, side = argv if argv is not None else sys.argv[1:]
    side = int(side)

    import numpy as np
    import PIL.Image
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageSegmentation, pipeline

    torch.set_num_threads(2)
    model = AutoModelForImageSegmentation.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoImageProcessor.from_pretrained(
        folder, trust_remote_code=True, size={"height": side, "width": side}
    )
    rng = np.random.default_rng(0)
    image = PIL.Image.fromarray(rng.integers(0, 256, (side + 7, side - 5, 3), dtype=np.uint8))
    inputs = processor(images=image, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    np.save(f"{out_dir}/pixel_values.npy", inputs["pixel_values"].numpy())
    np.save(f"{out_dir}/logits.npy", logits.numpy())
    segmenter = pipeline("image-segmentation", model=model, image_processor=processor)
    segments = segmenter(image)
    report = {
        "model_class": type(model).__module__ + "." + type(model).__qualname__,
        "processor_class": type(processor).__module__ + "." + type(processor).__qualname__,
        "labels": [segment["label"] for segment in segments],
        "mask_sizes": [list(segment["mask"].size) for segment in segments],
        "birefnet_hf_loaded": any(name.split(".")[0] == "birefnet_hf" for name in sys.modules),
    }
    print(json.dumps(report))
    return 0


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
    import torch

    folder = Path(folder).resolve()
    with tempfile.TemporaryDirectory(prefix="birefnet-remote-check-") as scratch:
        scratch = Path(scratch)
        (scratch / "cwd").mkdir()
        env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
        env.update(
            HF_MODULES_CACHE=str(scratch / "modules"), HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error"
        )
        # Run as a file, not with -m: `python -m birefnet_hf.publishing.remote_check` would import the birefnet_hf
        # package (and register its Auto classes) before this module runs, which is what the check must exclude.
        command = [sys.executable, "-I", str(Path(__file__).resolve()), str(folder), str(scratch), str(CHECK_SIZE)]
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


if __name__ == "__main__":
    raise SystemExit(main())
