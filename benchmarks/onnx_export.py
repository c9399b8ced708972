# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""ONNX export cost and onnxruntime CPU latency against this package's PyTorch CPU path, per backbone.

For each backbone (random weights, deformable offsets made non-zero so the sampling really runs; same weights and
input everywhere), three fresh subprocesses so that each peak memory is its own:

* ``export``: :func:`birefnet_hf.onnx_export.export_onnx` at SxS, float32, without its built-in validation (the
  validation is measured below); wall time, peak RSS of the process, file size;
* ``onnxruntime``: CPU provider, default session settings with ``--threads`` intra-op threads; session creation
  time, latency (median of ``--repeats`` after one warm-up), peak RSS, and max |logit diff| against PyTorch;
* ``pytorch``: this package's eager CPU path (``model(pixel_values).logits`` under ``inference_mode``), float32,
  ``--threads`` threads; latency (median, after one warm-up), peak RSS.

    python benchmarks/onnx_export.py --backbones pvt_v2_b0 swin_v1_t swin_v1_l --size 1024 --repeats 3 --threads 2

(Not named ``onnx.py``: a script's folder comes first on ``sys.path``, so that name would shadow the onnx package.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _build(backbone: str, size: int, folder: str) -> None:
    import torch

    from birefnet_hf import BiRefNetConfig, BiRefNetForImageSegmentation, BiRefNetImageProcessor
    from birefnet_hf.modeling_birefnet import ZeroInitConv2d

    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone=backbone)).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, ZeroInitConv2d):
                module.weight.normal_(0, 0.01)
                module.bias.normal_(0, 0.5)
    model.save_pretrained(folder)
    BiRefNetImageProcessor(size={"height": size, "width": size}).save_pretrained(folder)


def _input(size: int):
    import torch

    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))


def _child(stage: str, folder: str, size: int, repeats: int, threads: int) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    onnx_path = os.path.join(folder, "model.onnx")
    if stage == "export":
        from birefnet_hf.onnx_export import export_onnx

        started = time.perf_counter()
        report = export_onnx(folder, onnx_path, validate=False)
        return {"seconds": time.perf_counter() - started, "peak_mib": _peak_rss_mib(), "file_mib": report.file_size / 2**20}
    pixel_values = _input(size)
    if stage == "pytorch":
        from birefnet_hf import BiRefNetForImageSegmentation

        model = BiRefNetForImageSegmentation.from_pretrained(folder).eval()
        times = []
        with torch.inference_mode():
            for index in range(repeats + 1):
                started = time.perf_counter()
                logits = model(pixel_values=pixel_values).logits
                if index:
                    times.append(time.perf_counter() - started)
        np.save(os.path.join(folder, "torch_logits.npy"), logits.numpy())
        return {"seconds": statistics.median(times), "peak_mib": _peak_rss_mib()}
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    started = time.perf_counter()
    session = onnxruntime.InferenceSession(onnx_path, sess_options=options, providers=["CPUExecutionProvider"])
    load_seconds = time.perf_counter() - started
    times = []
    for index in range(repeats + 1):
        started = time.perf_counter()
        logits = session.run(None, {"pixel_values": pixel_values.numpy()})[0]
        if index:
            times.append(time.perf_counter() - started)
    reference = np.load(os.path.join(folder, "torch_logits.npy"))
    return {
        "seconds": statistics.median(times),
        "load_seconds": load_seconds,
        "peak_mib": _peak_rss_mib(),
        "max_abs_logit_diff": float(np.abs(logits - reference).max()),
    }


def _run(stage: str, folder: str, size: int, repeats: int, threads: int) -> dict:
    command = [sys.executable, __file__, "--_child", stage, folder, str(size), str(repeats), str(threads)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"{stage} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=["pvt_v2_b0", "swin_v1_t", "swin_v1_l"])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--_child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        stage, folder, size, repeats, threads = args._child
        print(json.dumps(_child(stage, folder, int(size), int(repeats), int(threads))))
        return 0

    print(f"load before: {os.getloadavg()[0]:.2f} (1-min), {args.threads} threads, size {args.size}, "
          f"median of {args.repeats}")
    header = (
        "| backbone | export s | export peak MiB | file MiB | ORT load s | ORT latency s | ORT peak MiB | "
        "PyTorch latency s | PyTorch peak MiB | ORT / PyTorch | max abs dlogit |"
    )
    rows = [header, "|" + "---|" * 11]
    for backbone in args.backbones:
        with tempfile.TemporaryDirectory(prefix=f"onnx-bench-{backbone}-") as folder:
            _build(backbone, args.size, folder)
            export = _run("export", folder, args.size, args.repeats, args.threads)
            torch_run = _run("pytorch", folder, args.size, args.repeats, args.threads)
            ort_run = _run("onnxruntime", folder, args.size, args.repeats, args.threads)
        rows.append(
            f"| {backbone} | {export['seconds']:.1f} | {export['peak_mib']:.0f} | {export['file_mib']:.1f} | "
            f"{ort_run['load_seconds']:.1f} | {ort_run['seconds']:.2f} | {ort_run['peak_mib']:.0f} | "
            f"{torch_run['seconds']:.2f} | {torch_run['peak_mib']:.0f} | {ort_run['seconds'] / torch_run['seconds']:.2f} | "
            f"{ort_run['max_abs_logit_diff']:.2g} |"
        )
        print(rows[-1], flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f} (1-min)")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
