# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""GPU inference and training-step benchmark: one table per job, medians of CUDA-event timings.

    python benchmarks/gpu.py                                   # swin_v1_l, 1024, batch 1 and 8, every variant
    python benchmarks/gpu.py --backbone swin_v1_t --batch-sizes 1 --variants bf16 cudagraph-bf16
    python benchmarks/gpu.py --train                           # + training steps (batch 2 and 4, bf16 autocast)
    python benchmarks/gpu.py --variants bf16 --batch-sizes 1 --profile prof.txt   # + where the time of one goes
    python benchmarks/gpu.py --device cpu --size 128 --repeats 2 --batch-sizes 1 --variants fp32 autocast-bf16
                                                                # smoke run of the script itself on a CPU

Inference variants: ``fp32`` (tf32 off), ``fp32-tf32``, ``fp16`` / ``bf16`` (model cast), ``autocast-bf16`` /
``autocast-fp16`` (float32 model under ``torch.autocast``), ``compiled-bf16`` (``torch.compile`` default mode,
fullgraph), ``cudagraph-bf16`` (``torch.compile(mode="reduce-overhead")``: CUDA graphs, the low-latency path),
``graph-bf16`` / ``graph-fp16`` (the eager forward captured as CUDA graphs, ``birefnet_hf.cuda_graphs``),
``regional-bf16`` (the repeated blocks compiled one graph per kind, ``compile_for_inference(regional=True,
cuda_graphs=False)``), ``regional-graph-bf16`` (the same, then the whole forward captured as CUDA graphs: what
``birefnet-hf segment --compile`` runs on CUDA) and ``regional-backbone-graph-bf16`` (only the backbone's blocks
compiled, the decoder eager with the Triton sampler, then CUDA graphs).
Weights are random (timing does not depend on them). Peak memory is ``torch.cuda.max_memory_allocated`` during the
timed calls, minus nothing (the model's weights included). The bf16 matmul rate (8192^3) gives the card's ceiling.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time

import torch

from birefnet_hf import BiRefNetConfig, BiRefNetForImageSegmentation

INFERENCE_VARIANTS = (
    "fp32", "fp32-tf32", "fp16", "bf16", "autocast-bf16", "autocast-fp16", "compiled-bf16", "cudagraph-bf16",
    "graph-bf16", "graph-fp16", "regional-bf16", "regional-graph-bf16", "regional-backbone-graph-bf16",
)
#: Suffixes that change one setting of a variant: ``+benchmark`` (cuDNN autotuning), ``+channels-last`` (model
#: and input in channels-last memory format), ``+no-pad`` (no tensor-core channel padding of odd convolutions),
#: ``+no-triton`` (the deformable convolutions' portable ``grid_sample`` sampler instead of the fused Triton one),
#: ``+nchw-product`` (the deformable product written channels-first in CUDA inference, as before session 8, so that
#: the decoder runs channels-first after its first deformable convolution), ``+sdpa-efficient``
#: (the Swin window attention in PyTorch's memory-efficient SDPA kernel instead of the default choice, cuDNN's on
#: Hopper).
MODIFIERS = ("benchmark", "channels-last", "no-pad", "no-triton", "nchw-product", "sdpa-efficient")


def _variant(text: str) -> str:
    base, *modifiers = text.split("+")
    if base not in INFERENCE_VARIANTS or any(m not in MODIFIERS for m in modifiers):
        raise argparse.ArgumentTypeError(
            f"unknown variant {text!r}: one of {', '.join(INFERENCE_VARIANTS)}, optionally +{'/+'.join(MODIFIERS)}"
        )
    return text


@contextlib.contextmanager
def _modifiers(names):
    """The settings of a variant's ``+`` suffixes, restored afterwards."""
    import birefnet_hf.deformable_conv as deformable
    import birefnet_hf.modeling_birefnet as modeling

    benchmark, pad = torch.backends.cudnn.benchmark, modeling.tensor_core_channel_multiple
    triton_kernels, product_layout = deformable.use_cuda_inference_kernels, deformable.channels_last_deformable_product
    torch.backends.cudnn.benchmark = "benchmark" in names
    if "no-pad" in names:
        modeling.tensor_core_channel_multiple = lambda tensor: 1
    if "no-triton" in names:
        deformable.use_cuda_inference_kernels = lambda *tensors: False
    if "nchw-product" in names:
        deformable.channels_last_deformable_product = lambda *tensors: False
    attention = contextlib.nullcontext()
    if "sdpa-efficient" in names:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        attention = sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION])
    try:
        with attention:
            yield
    finally:
        torch.backends.cudnn.benchmark = benchmark
        modeling.tensor_core_channel_multiple = pad
        deformable.use_cuda_inference_kernels = triton_kernels
        deformable.channels_last_deformable_product = product_layout


class _Timer:
    """CUDA events on a GPU, ``perf_counter`` elsewhere; milliseconds."""

    def __init__(self, device: torch.device):
        self.device = device

    def measure(self, fn, repeats: int, warmup: int) -> list[float]:
        for _ in range(warmup):
            fn()
        self.synchronize()
        times = []
        for _ in range(repeats):
            if self.device.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            else:
                begin = time.perf_counter()
                fn()
                times.append((time.perf_counter() - begin) * 1e3)
        return times

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def reset_peak(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_gib(self) -> float | None:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**30
        return None


def matmul_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    times = _Timer(device).measure(lambda: a @ b, repeats=10, warmup=3)
    return 2 * 8192**3 / (statistics.median(times) / 1e3) / 1e12


def _inference_callable(model, variant: str, x: torch.Tensor):
    """(callable, description) for one variant; the model is a float32 copy on the device."""
    if variant in ("fp32", "fp32-tf32"):
        tf32 = variant == "fp32-tf32"

        def run():
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            return model(pixel_values=x).logits

        return run
    if variant in ("fp16", "bf16"):
        dtype = torch.float16 if variant == "fp16" else torch.bfloat16
        half, xh = copy.deepcopy(model).to(dtype), x.to(dtype)
        return lambda: half(pixel_values=xh).logits
    if variant.startswith("autocast-"):
        dtype = torch.float16 if variant.endswith("fp16") else torch.bfloat16

        def run():
            with torch.autocast(x.device.type, dtype=dtype):
                return model(pixel_values=x).logits

        return run
    if variant in ("graph-bf16", "graph-fp16"):
        from birefnet_hf.cuda_graphs import capture_cuda_graphs

        dtype = torch.float16 if variant.endswith("fp16") else torch.bfloat16
        half, xh = copy.deepcopy(model).to(dtype), x.to(dtype)
        capture_cuda_graphs(half)
        return lambda: half(pixel_values=xh).logits
    if variant in ("compiled-bf16", "cudagraph-bf16"):
        half, xh = copy.deepcopy(model).to(torch.bfloat16), x.to(torch.bfloat16)
        mode = "reduce-overhead" if variant == "cudagraph-bf16" else None
        compiled = torch.compile(half, mode=mode, fullgraph=True, dynamic=False)
        return lambda: compiled(pixel_values=xh).logits
    if variant in ("regional-bf16", "regional-graph-bf16"):
        from birefnet_hf.inference_paths import compile_for_inference

        half, xh = copy.deepcopy(model).to(torch.bfloat16), x.to(torch.bfloat16)
        compile_for_inference(half, regional=True, cuda_graphs=variant == "regional-graph-bf16")
        return lambda: half(pixel_values=xh).logits
    if variant == "regional-backbone-graph-bf16":  # the backbone's blocks compiled, the decoder eager (Triton sampler)
        from birefnet_hf.cuda_graphs import capture_cuda_graphs
        from birefnet_hf.regional_compile import compile_regions

        half, xh = copy.deepcopy(model).to(torch.bfloat16), x.to(torch.bfloat16)
        capture_cuda_graphs(compile_regions(half, backbone_only=True))
        return lambda: half(pixel_values=xh).logits
    raise ValueError(f"unknown variant {variant!r}; choose from {INFERENCE_VARIANTS}")


def bench_inference(args, device: torch.device) -> list[dict]:
    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone=args.backbone)).eval().to(device)
    timer = _Timer(device)
    rows = []
    for name in args.variants:
        variant, *modifiers = name.split("+")
        row = {"variant": name}
        base = model.to(memory_format=torch.channels_last) if "channels-last" in modifiers else model
        for batch in args.batch_sizes:
            x = torch.randn(batch, 3, args.size, args.size, device=device)
            if "channels-last" in modifiers:
                x = x.contiguous(memory_format=torch.channels_last)
            try:
                with torch.inference_mode() if "graph" not in variant else torch.no_grad(), _modifiers(modifiers):
                    fn = _inference_callable(base, variant, x)
                    timer.reset_peak()
                    times = timer.measure(fn, args.repeats, args.warmup)
                row[f"b{batch}"] = statistics.median(times) / batch
                row[f"peak_b{batch}"] = timer.peak_gib()
            except Exception as error:  # a variant that fails is a result to report, not a crash of the table
                row[f"b{batch}"] = f"error: {type(error).__name__}: {str(error)[:80]}"
                row[f"peak_b{batch}"] = None
            finally:
                torch.backends.cuda.matmul.allow_tf32 = False
                torch.backends.cudnn.allow_tf32 = True
                torch._dynamo.reset()
        if "channels-last" in modifiers:
            model.to(memory_format=torch.contiguous_format)
        rows.append(row)
    return rows


TRAINING_VARIANTS = ("eager", "eager-ckpt", "compiled", "compiled-ckpt")


def bench_training(args, device: torch.device) -> list[dict]:
    rows = []
    timer = _Timer(device)
    for name in args.train_variants:
        compiled, checkpointing = name.startswith("compiled"), name.endswith("-ckpt")
        row = {"variant": f"bf16 autocast{' + compile' if compiled else ''}"
                          f"{' + grad ckpt' if checkpointing else ''}"}
        for batch in args.train_batch_sizes:
            torch.manual_seed(0)
            model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone=args.backbone)).to(device).train()
            if checkpointing:
                getattr(model, "activation_checkpointing_enable", model.gradient_checkpointing_enable)()
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
            forward = torch.compile(model, fullgraph=True) if compiled else model
            x = torch.randn(batch, 3, args.size, args.size, device=device)
            labels = (torch.rand(batch, 1, args.size, args.size, device=device) > 0.5).float()

            def step(forward=forward, x=x, labels=labels, optimizer=optimizer):
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    loss = forward(pixel_values=x, labels=labels).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

            try:
                timer.reset_peak()
                times = timer.measure(step, args.repeats, args.warmup)
                row[f"b{batch}"] = statistics.median(times)
                row[f"peak_b{batch}"] = timer.peak_gib()
            except Exception as error:
                row[f"b{batch}"] = f"error: {type(error).__name__}: {str(error)[:80]}"
                row[f"peak_b{batch}"] = None
            finally:
                del model, optimizer, forward
                torch._dynamo.reset()
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        rows.append(row)
    return rows


def profile_forward(args, device: torch.device, path: str) -> None:
    """Profile a few eager forwards of the first inference variant at each batch size: write the operator tables
    (by device time; then by input shape) to ``path`` and print, per forward, the wall time, the device kernel time
    and the host-side launch, copy and synchronisation counts (a forward bound by the host shows wall >> kernel)."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone=args.backbone)).eval().to(device)
    variant, forwards = args.variants[0], 3
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sort_key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    timer = _Timer(device)
    with open(path, "w") as handle:
        for batch in args.batch_sizes:
            x = torch.randn(batch, 3, args.size, args.size, device=device)
            with torch.no_grad():
                fn = _inference_callable(model, variant, x)
                for _ in range(args.warmup):
                    fn()
                timer.synchronize()
                begin = time.perf_counter()
                with profile(activities=activities, record_shapes=True) as prof:
                    for _ in range(forwards):
                        fn()
                    timer.synchronize()
                wall = (time.perf_counter() - begin) * 1e3 / forwards
            events = prof.key_averages()
            title = f"{variant}, batch {batch}, {args.backbone} at {args.size}, {forwards} forwards"
            handle.write(f"{title}\n{events.table(sort_by=sort_key, row_limit=70, max_name_column_width=90)}\n")
            by_shape = prof.key_averages(group_by_input_shape=True)
            handle.write(f"{title}, by input shape\n"
                         f"{by_shape.table(sort_by=sort_key, row_limit=50, max_name_column_width=40)}\n\n")
            counts = {event.key: event.count / forwards for event in events}
            kernel_ms = sum(getattr(e, "self_device_time_total", 0.0) for e in events) / 1e3 / forwards
            print(f"\n### Profile ({variant}, batch {batch}; tables in {path})")
            print(f"per forward: wall {wall:.1f} ms (under the profiler), device kernel time {kernel_ms:.1f} ms")
            for name in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC", "cudaMemcpyAsync",
                         "cudaStreamSynchronize", "cudaDeviceSynchronize", "aten::nonzero", "aten::item",
                         "aten::_local_scalar_dense", "aten::copy_"):
                if name in counts:
                    print(f"  {name}: {counts[name]:.0f} per forward")


def _format(value) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def print_table(title: str, rows: list[dict], batches, unit: str) -> None:
    print(f"\n### {title}")
    header = "| variant | " + " | ".join(f"batch {b} {unit} (peak GiB)" for b in batches) + " |"
    print(header)
    print("|---|" + "---:|" * len(batches))
    for row in rows:
        cells = [f"{_format(row.get(f'b{b}'))} ({_format(row.get(f'peak_b{b}'))})" for b in batches]
        print(f"| {row['variant']} | " + " | ".join(cells) + " |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="swin_v1_l")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--variants", nargs="+", default=list(INFERENCE_VARIANTS), type=_variant,
                        help=f"any of {', '.join(INFERENCE_VARIANTS)}, each optionally with +{'/+'.join(MODIFIERS)}")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--train", action="store_true", help="also time training steps")
    parser.add_argument("--train-batch-sizes", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--train-variants", nargs="+", default=list(TRAINING_VARIANTS), choices=TRAINING_VARIANTS,
                        help="eager / compiled forward (torch.compile fullgraph), each without and with gradient "
                             "checkpointing")
    parser.add_argument("--no-inference", action="store_true", help="skip the inference table")
    parser.add_argument("--profile", metavar="PATH", help="also profile the first variant at the first batch size")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__}; {args.backbone} at {args.size}x{args.size}; "
          f"median of {args.repeats} after {args.warmup} warm-up calls")
    ceiling = matmul_tflops(device)
    if ceiling is not None:
        print(f"bf16 matmul 8192^3: {ceiling:.0f} TFLOP/s")
    with contextlib.suppress(KeyboardInterrupt):
        if not args.no_inference:
            print_table("Inference, ms per image", bench_inference(args, device), args.batch_sizes, "ms/img")
        if args.train:
            print_table("Training step (AdamW), ms per step", bench_training(args, device), args.train_batch_sizes,
                        "ms/step")
        if args.profile:
            profile_forward(args, device, args.profile)


if __name__ == "__main__":
    main()
