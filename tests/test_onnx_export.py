# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""ONNX export (birefnet_hf.onnx_export), the onnxruntime backend of `segment` (birefnet_hf.onnx_runtime)."""

import os

import numpy as np
import PIL.Image
import pytest
import torch

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

from birefnet_hf import BiRefNetConfig, BiRefNetForImageSegmentation, BiRefNetImageProcessor  # noqa: E402
from birefnet_hf.modeling_birefnet import ZeroInitConv2d  # noqa: E402
from birefnet_hf.onnx_export import (  # noqa: E402
    FP16_PROBABILITY_TOLERANCE,
    FP32_LOGIT_TOLERANCE,
    OPSET,
    STANDARD_DOMAINS,
    _fix_dims,
    export_onnx,
    read_metadata,
)

SIDE = 128

def _model_dir(path, backbone: str, side: int):
    """A random BiRefNet with non-zero deformable offsets (so the sampling is really exercised) and a processor at
    ``side``, saved like a Hub folder."""
    torch.manual_seed(0)
    model = BiRefNetForImageSegmentation(BiRefNetConfig(backbone=backbone)).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, ZeroInitConv2d):
                module.weight.normal_(0.0, 0.05, generator=generator)
                module.bias.normal_(0.0, 0.5, generator=generator)
    model.save_pretrained(path)
    BiRefNetImageProcessor(size={"height": side, "width": side}).save_pretrained(path)
    return path, model


@pytest.fixture(scope="module")
def pvt_export(tmp_path_factory):
    folder, model = _model_dir(tmp_path_factory.mktemp("pvt_model"), "pvt_v2_b0", SIDE)
    output = tmp_path_factory.mktemp("pvt_onnx") / "model.onnx"
    report = export_onnx(folder, output)
    return folder, model, output, report


def _session(path):
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _logits(model, pixel_values):
    with torch.inference_mode():
        return model(pixel_values=pixel_values).logits


def test_export_has_standard_operators_opset_and_metadata(pvt_export):
    folder, model, output, report = pvt_export
    proto = onnx.load(str(output))
    onnx.checker.check_model(proto)
    assert {node.domain for node in proto.graph.node} <= STANDARD_DOMAINS
    assert not proto.functions
    assert {(entry.domain, entry.version) for entry in proto.opset_import} == {("", OPSET)}
    metadata = read_metadata(output)
    assert metadata["backbone"] == "pvt_v2_b0" and metadata["backbone_family"] == "pvt_v2"
    assert metadata["native_size"] == [SIDE, SIDE]
    assert metadata["image_mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert metadata["image_std"] == pytest.approx([0.229, 0.224, 0.225])
    assert metadata["input"] == "pixel_values" and metadata["output"] == "logits" and metadata["opset"] == OPSET
    assert report.input_name == "pixel_values" and report.output_name == "logits"
    assert report.file_size == output.stat().st_size
    # the validation's numbers are in the report, the file and the printed summary
    assert report.cases[0].max_abs_logit_diff <= FP32_LOGIT_TOLERANCE
    assert metadata["validation"][report.cases[0].name]["passed"] is True
    assert "max|dlogit|" in report.format()


def test_parity_batch_1_and_2(pvt_export):
    """onnxruntime (default CPU settings) against PyTorch on fresh inputs, batch 1 and 2 from one file."""
    _, model, output, report = pvt_export
    assert report.dynamic_batch
    batch_dim = onnx.load(str(output)).graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param == "batch"
    session = _session(output)
    generator = torch.Generator().manual_seed(5)
    for batch in (1, 2):
        pixel_values = torch.randn(batch, 3, SIDE, SIDE, generator=generator)
        result = session.run(None, {"pixel_values": pixel_values.numpy()})[0]
        difference = np.abs(result - _logits(model, pixel_values).numpy()).max()
        assert result.shape == (batch, 1, SIDE, SIDE)
        assert difference <= FP32_LOGIT_TOLERANCE, (batch, difference)


def test_two_sizes_from_one_file(pvt_export):
    _, model, output, report = pvt_export
    assert report.dynamic_size
    session = _session(output)
    for height, width in ((SIDE, SIDE), (SIDE + 64, SIDE - 32)):
        pixel_values = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(height))
        result = session.run(None, {"pixel_values": pixel_values.numpy()})[0]
        assert np.abs(result - _logits(model, pixel_values).numpy()).max() <= FP32_LOGIT_TOLERANCE


def test_fixed_size_graph_refuses_other_sizes_clearly(pvt_export, tmp_path):
    """A graph whose size is declared fixed: onnxruntime and the segment backend refuse other sizes by name."""
    from birefnet_hf.onnx_runtime import ONNXRuntimeBiRefNet

    _, model, output, _ = pvt_export
    proto = onnx.load(str(output))
    axes = {"pixel_values": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch", 2: "height", 3: "width"}}
    _fix_dims(proto, batch=None, size=(SIDE, SIDE), axes=axes)
    fixed = tmp_path / "fixed.onnx"
    onnx.save(proto, str(fixed))
    runtime = ONNXRuntimeBiRefNet(fixed)
    pixel_values = torch.randn(2, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(0))
    logits = runtime(pixel_values=pixel_values).logits
    assert (logits - _logits(model, pixel_values)).abs().max() <= FP32_LOGIT_TOLERANCE
    with pytest.raises(ValueError, match=f"fixed height of {SIDE}, got {SIDE + 32}"):
        runtime(pixel_values=torch.zeros(1, 3, SIDE + 32, SIDE))


def test_validation_failure_exits_1_and_writes_nothing(pvt_export, tmp_path, monkeypatch, capsys):
    from birefnet_hf import onnx_export
    from birefnet_hf.cli import main

    folder = pvt_export[0]
    output = tmp_path / "model.onnx"
    monkeypatch.setattr(onnx_export, "FP32_LOGIT_TOLERANCE", -1.0)  # nothing can pass
    argv = ["export", "onnx", "--model", str(folder), "--output", str(output), "--height", "64", "--width", "64"]
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert "validation failed" in error and "EXCEEDS TOLERANCE" in error and "max|dlogit|" in error
    assert not output.exists() and not list(tmp_path.iterdir())


def test_cli_usage_errors(tmp_path, capsys):
    from birefnet_hf.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["export", "onnx", "--model", "x", "--output", str(tmp_path / "m.onnx"), "--height", "100"])
    assert exit_info.value.code == 2
    assert "multiple of 32" in capsys.readouterr().err
    assert main(["export", "onnx", "--model", str(tmp_path / "missing"), "--output", str(tmp_path / "m.onnx")]) == 2
    assert "error" in capsys.readouterr().err
    assert main(["export", "onnx", "--model", str(tmp_path), "--output", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_segment_onnxruntime_backend_matches_pytorch(pvt_export, tmp_path):
    from birefnet_hf.data.synthetic import SYNTHETIC_CLASSES, render_example
    from birefnet_hf.segment import main

    folder, _, output, _ = pvt_export
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    for index, size in enumerate(((150, 90), (200, 260))):
        image, _ = render_example(rng, max(size), SYNTHETIC_CLASSES[index], 0.5)
        image.resize(size).save(inputs / f"photo{index}.png")
    common = [str(inputs), "--format", "alpha", "--no-progress", "--batch-size", "2"]
    assert main([*common, "--model", str(folder), "-o", str(tmp_path / "torch"), "--device", "cpu"]) == 0
    assert main([*common, "--model", str(output), "-o", str(tmp_path / "ort"), "--backend", "onnxruntime"]) == 0
    for index in range(2):
        expected = np.asarray(PIL.Image.open(tmp_path / "torch" / f"photo{index}.png"), dtype=np.int16)
        actual = np.asarray(PIL.Image.open(tmp_path / "ort" / f"photo{index}.png"), dtype=np.int16)
        assert actual.shape == expected.shape
        assert np.abs(actual - expected).max() <= 1  # logits within 1e-4: 8-bit mattes equal up to rounding


def test_segment_onnxruntime_backend_errors(tmp_path, capsys):
    from birefnet_hf.segment import main

    image = tmp_path / "photo.png"
    PIL.Image.new("RGB", (40, 30)).save(image)
    not_onnx = tmp_path / "model.onnx"
    not_onnx.write_bytes(b"not an onnx file")
    args = [str(image), "-o", str(tmp_path / "out"), "--backend", "onnxruntime", "--no-progress"]
    assert main([*args, "--model", str(not_onnx)]) == 2
    assert "cannot load" in capsys.readouterr().err
    assert main([*args, "--model", str(tmp_path / "nothing.onnx")]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.slow
def test_fp16_export_loads_and_runs(pvt_export, tmp_path):
    folder, model, _, _ = pvt_export
    output = tmp_path / "model_fp16.onnx"
    report = export_onnx(folder, output, dtype="fp16")
    assert report.dtype == "fp16" and "float16" in report.tolerance
    session = _session(output)
    assert session.get_inputs()[0].type == "tensor(float16)"
    pixel_values = torch.randn(1, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(3))
    result = session.run(None, {"pixel_values": pixel_values.numpy().astype(np.float16)})[0]
    assert result.dtype == np.float16
    expected = torch.sigmoid(_logits(model, pixel_values)).numpy()
    assert np.abs(torch.sigmoid(torch.from_numpy(result.astype(np.float32))).numpy() - expected).max() <= (
        FP16_PROBABILITY_TOLERANCE
    )
    assert {node.domain for node in onnx.load(str(output)).graph.node} <= STANDARD_DOMAINS


@pytest.mark.slow
def test_fp16_export_with_float32_io(pvt_export, tmp_path):
    """`--keep-io-types`: the float16 graph takes and returns float32 (transformers.js's model_fp16.onnx layout), within
    the float16 tolerance; the option is refused where it means nothing."""
    from birefnet_hf.cli import main

    folder, model, _, _ = pvt_export
    output = tmp_path / "model_fp16.onnx"
    argv = ["export", "onnx", "--model", str(folder), "--output", str(output), "--dtype", "fp16", "--keep-io-types"]
    assert main(argv) == 0
    session = _session(output)
    assert session.get_inputs()[0].type == "tensor(float)" and session.get_outputs()[0].type == "tensor(float)"
    assert read_metadata(output)["input_layout"].startswith("float32")
    pixel_values = torch.randn(2, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(4))
    result = session.run(None, {"pixel_values": pixel_values.numpy()})[0]
    expected = torch.sigmoid(_logits(model, pixel_values)).numpy()
    assert np.abs(torch.sigmoid(torch.from_numpy(result)).numpy() - expected).max() <= FP16_PROBABILITY_TOLERANCE
    initializer_types = {tensor.data_type for tensor in onnx.load(str(output)).graph.initializer}
    assert onnx.TensorProto.FLOAT16 in initializer_types  # the weights really are float16
    for argv in (["--keep-io-types"], ["--dtype", "fp16", "--keep-io-types", "--include-preprocessing"]):
        with pytest.raises(ValueError, match="keep_io_types"):
            export_onnx(folder, tmp_path / "refused.onnx", **{
                "keep_io_types": True, "dtype": "fp16" if "fp16" in argv else "fp32",
                "include_preprocessing": "--include-preprocessing" in argv,
            })
    assert not (tmp_path / "refused.onnx").exists()


@pytest.mark.slow
def test_include_preprocessing_and_sigmoid(pvt_export, tmp_path):
    from birefnet_hf.image_processing_birefnet import BiRefNetImageProcessorPil

    folder, model, _, _ = pvt_export
    output = tmp_path / "model_uint8.onnx"
    report = export_onnx(folder, output, include_preprocessing=True)
    assert report.input_name == "image" and report.output_name == "matte"
    session = _session(output)
    assert session.get_inputs()[0].type == "tensor(uint8)"
    rng = np.random.default_rng(0)
    processor = BiRefNetImageProcessorPil(size={"height": SIDE, "width": SIDE})
    for height, width in ((97, 211), (300, 180)):
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        matte = session.run(None, {"image": image[None]})[0]
        assert matte.shape == (1, 1, height, width) and 0.0 <= matte.min() and matte.max() <= 1.0
        expected = processor.post_process_alpha(
            _logits(model, processor(images=PIL.Image.fromarray(image), return_tensors="pt")["pixel_values"]),
            [(height, width)],
        )[0]
        assert np.abs(matte[0, 0] - expected.numpy()).max() <= 2e-2
    probabilities = tmp_path / "model_sigmoid.onnx"
    export_onnx(folder, probabilities, sigmoid=True)
    pixel_values = torch.randn(1, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(4))
    result = _session(probabilities).run(None, {"pixel_values": pixel_values.numpy()})[0]
    assert np.abs(result - torch.sigmoid(_logits(model, pixel_values)).numpy()).max() <= FP32_LOGIT_TOLERANCE


@pytest.fixture(scope="module")
def swin_export(tmp_path_factory):
    folder, model = _model_dir(tmp_path_factory.mktemp("swin_model"), "swin_v1_t", SIDE)
    output = tmp_path_factory.mktemp("swin_onnx") / "model.onnx"
    return folder, model, output, export_onnx(folder, output)


@pytest.mark.slow
def test_swin_export_parity(swin_export):
    _, model, output, report = swin_export
    assert {node.domain for node in onnx.load(str(output)).graph.node} <= STANDARD_DOMAINS
    assert read_metadata(output)["backbone_family"] == "swin"
    assert report.cases[0].passed and report.cases[0].max_abs_logit_diff <= FP32_LOGIT_TOLERANCE
    pixel_values = torch.randn(1, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(6))
    result = _session(output).run(None, {"pixel_values": pixel_values.numpy()})[0]
    assert np.abs(result - _logits(model, pixel_values).numpy()).max() <= FP32_LOGIT_TOLERANCE


@pytest.mark.slow
def test_swin_graph_is_dynamic(swin_export):
    _, _, _, report = swin_export
    assert report.dynamic_batch and report.dynamic_size


@pytest.mark.slow
def test_publish_adds_onnx_subfolder(tmp_path):
    """`birefnet-hf publish --onnx`: onnx/model.onnx + onnx/model_fp16.onnx next to the weights (transformers.js
    layout: pixel_values in, the logits as the first output), both reproducing the published weights."""
    import json
    import shutil

    from birefnet_hf.publish import _default_hub_configs, main

    hub = tmp_path / "hub"
    shutil.copytree(_default_hub_configs() / "pvt_v2_b0", hub / "pvt_v2_b0")
    preprocessor = hub / "pvt_v2_b0" / "preprocessor_config.json"
    settings = json.loads(preprocessor.read_text())
    settings["size"] = {"height": SIDE, "width": SIDE}  # a small native size keeps the test short
    preprocessor.write_text(json.dumps(settings))
    output = tmp_path / "out"
    argv = ["--random-init", "--dry-run", "--output-dir", str(output), "--only", "pvt_v2_b0", "--hub-configs", str(hub),
            "--no-check-remote-code", "--onnx"]
    assert main(argv) == 0
    folder = output / "pvt_v2_b0"
    assert sorted(path.name for path in (folder / "onnx").iterdir()) == ["model.onnx", "model_fp16.onnx"]
    model = BiRefNetForImageSegmentation.from_pretrained(folder).eval()
    pixel_values = torch.randn(1, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(7))
    expected = _logits(model, pixel_values).numpy()
    # transformers.js feeds float32 pixel_values to both files: the float16 one casts at its ends
    for name, tolerance in (("model.onnx", FP32_LOGIT_TOLERANCE), ("model_fp16.onnx", None)):
        session = _session(folder / "onnx" / name)
        assert [i.name for i in session.get_inputs()] == ["pixel_values"]
        assert session.get_inputs()[0].type == "tensor(float)" and session.get_outputs()[0].type == "tensor(float)"
        assert session.get_outputs()[0].name == "logits"
        result = session.run(None, {"pixel_values": pixel_values.numpy()})[0]
        if tolerance is not None:
            assert np.abs(result - expected).max() <= tolerance
        else:
            probabilities = torch.sigmoid(torch.from_numpy(result)) - torch.sigmoid(torch.from_numpy(expected))
            assert probabilities.abs().max() <= FP16_PROBABILITY_TOLERANCE
        assert read_metadata(folder / "onnx" / name)["native_size"] == [SIDE, SIDE]


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["vgg16", "resnet50", "dino_v3_s"])
def test_other_backbone_families_export_with_dynamic_axes(backbone, tmp_path):
    """The torchvision (VGG, ResNet) and DINOv3 families export too: standard operators, parity for batch 1 and 2
    and a second size from the one file."""
    folder, model = _model_dir(tmp_path / "model", backbone, SIDE)
    output = tmp_path / "model.onnx"
    report = export_onnx(folder, output)
    assert report.dynamic_batch and report.dynamic_size
    assert [case.passed for case in report.cases] == [True, True, True]
    assert {node.domain for node in onnx.load(str(output)).graph.node} <= STANDARD_DOMAINS
    assert read_metadata(output)["backbone"] == backbone
    pixel_values = torch.randn(2, 3, SIDE + 32, SIDE, generator=torch.Generator().manual_seed(5))
    result = _session(output).run(None, {"pixel_values": pixel_values.numpy()})[0]
    assert np.abs(result - _logits(model, pixel_values).numpy()).max() <= FP32_LOGIT_TOLERANCE
