# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""`birefnet-hf publish`: dry runs (folders that load with and without the package), model cards, validation errors,
and the real upload code against an in-process fake of the Hub's HTTP API."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import httpx2
import numpy as np
import PIL.Image
import pytest
import torch
import yaml
from huggingface_hub import ModelCard, constants
from huggingface_hub.utils import _http as hub_http
from safetensors.torch import load_file
from transformers import AutoImageProcessor, AutoModelForImageSegmentation, pipeline

from birefnet_hf import BiRefNetConfig, BiRefNetForImageSegmentation, BiRefNetImageProcessor
from birefnet_hf.hub_configs import HUB_SIZES
from birefnet_hf.model_card import METRICS
from birefnet_hf.publish import check_remote_code, main

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECK_SIDE = 64
CODE_FILES = {
    "configuration_birefnet.py",
    "modeling_birefnet.py",
    "backbones.py",
    "deformable_conv.py",
    "loss_birefnet.py",
    "image_processing_birefnet.py",
}
FOLDER_FILES = CODE_FILES | {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"}


# ----------------------------------------------------------------------------------------------------- helpers
def _write_mask(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(array.astype(np.uint8), mode="L").save(path)


@pytest.fixture(scope="module")
def eval_results_json(tmp_path_factory) -> Path:
    """A results.json written by examples/evaluate_dis.py itself (predictions mode on tiny DIS-VD / DIS-TE1 / DIS-TE2)."""
    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(0)
    for set_name in ("DIS-VD", "DIS-TE1", "DIS-TE2"):
        for index in range(2):
            mask = np.zeros((48, 40), np.uint8)
            top, left = rng.integers(4, 16, size=2)
            mask[top : top + 20, left : left + 18] = 255
            prediction = np.clip(mask.astype(float) * 0.8 + rng.normal(0, 30, mask.shape), 0, 255)
            _write_mask(root / "data" / set_name / "gt" / f"img{index}.png", mask)
            _write_mask(root / "predictions" / set_name / f"img{index}.png", prediction)
    spec = importlib.util.spec_from_file_location("birefnet_examples_evaluate", REPO_ROOT / "examples" / "evaluate_dis.py")
    evaluate_script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(evaluate_script)
    output = root / "results"
    code = evaluate_script.main(
        [
            "--predictions", str(root / "predictions"),
            "--data-root", str(root / "data"),
            "--sets", "DIS-VD", "DIS-TE1", "DIS-TE2",
            "--output-dir", str(output),
            "--name", "tiny",
            "--no-progress",
        ]
    )
    assert code == 0
    return output / "results.json"


def _expected_model_index(results_path: Path) -> dict[tuple[str, str], float]:
    data = json.loads(results_path.read_text())
    sets = dict(data["sets"])
    if "DIS-TE (mean)" in data:
        sets["DIS-TE (mean)"] = data["DIS-TE (mean)"]
    return {
        (set_name, METRICS[key][0]): round(value, 4)
        for set_name, scores in sets.items()
        for key, value in scores.items()
        if key in METRICS
    }


def _check_card(readme: Path, size: str, results_path: Path | None, repo_id: str | None = None) -> ModelCard:
    card = ModelCard.load(readme)
    data = card.data
    assert data.license == "mit"
    assert data.library_name == "transformers"
    assert data.pipeline_tag == "image-segmentation"
    assert {"birefnet", "dichotomous-image-segmentation", size} <= set(data.tags)
    assert len(data.tags) == len(set(data.tags))
    assert data.datasets == ["DIS5K"]
    assert set(data.metrics) == {metric_type for metric_type, _ in METRICS.values()}
    assert data.model_name.startswith("BiRefNet (")
    text = card.text
    for heading in ("## Model details", "## Weights", "## Usage", "## Training data", "## Evaluation",
                    "## Intended use", "## Limitations", "## Licence", "## Citation"):
        assert heading in text, heading
    assert "Bilateral Reference for High-Resolution Dichotomous Image Segmentation" in text
    assert "CAAI Artificial Intelligence Research" in text
    facts = yaml.safe_load((REPO_ROOT / "birefnet_hf" / "hub_configs_data" / size / "card.yaml").read_text())
    assert f"{facts['parameters']:,}" in text
    assert f"{facts['macs']['value'] / 1e9:.1f} G" in text
    if repo_id is not None:
        assert f'from_pretrained("{repo_id}", trust_remote_code=True)' in text
    if results_path is None:
        assert not data.eval_results
        assert "No evaluation results" in text
    else:
        found = {(r.dataset_split, r.metric_type): r.metric_value for r in data.eval_results}
        assert found == _expected_model_index(results_path)
        assert all(r.task_type == "image-segmentation" and r.dataset_type == "DIS5K" for r in data.eval_results)
    if size in ("swin_v1_l", "pvt_v2_b0"):
        # the paper's numbers are in their own labelled table, never in the model-index
        assert "### Reported in the paper" in text and "Table 7 of the paper" in text
        paper_macs = {"swin_v1_l": 1143, "pvt_v2_b0": 89}[size]
        assert f"| {paper_macs} |" in text
        assert paper_macs not in [r.metric_value for r in data.eval_results or []]
    return card


def _photo(height: int, width: int) -> PIL.Image.Image:
    rng = np.random.default_rng(1)
    return PIL.Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _check_folder_with_package(folder: Path, size: str) -> None:
    """Load with the package's Auto registrations, run the model at 64x64 and the image-segmentation pipeline."""
    assert {p.name for p in folder.iterdir()} >= FOLDER_FILES
    config = json.loads((folder / "config.json").read_text())
    assert config["backbone"] == size and config["architectures"] == ["BiRefNetForImageSegmentation"]
    assert config["auto_map"] == {
        "AutoConfig": "configuration_birefnet.BiRefNetConfig",
        "AutoModelForImageSegmentation": "modeling_birefnet.BiRefNetForImageSegmentation",
    }
    processor_config = json.loads((folder / "preprocessor_config.json").read_text())
    assert processor_config["auto_map"] == {"AutoImageProcessor": "image_processing_birefnet.BiRefNetImageProcessor"}

    model = AutoModelForImageSegmentation.from_pretrained(folder).eval()
    assert type(model) is BiRefNetForImageSegmentation
    processor = AutoImageProcessor.from_pretrained(folder, size={"height": CHECK_SIDE, "width": CHECK_SIDE})
    assert isinstance(processor, BiRefNetImageProcessor)
    saved = load_file(folder / "model.safetensors")
    for key, value in model.state_dict().items():
        if key in saved:
            torch.testing.assert_close(value, saved[key], rtol=0, atol=0)
    image = _photo(50, 70)
    with torch.no_grad():
        logits = model(**processor(images=image, return_tensors="pt")).logits
    assert logits.shape == (1, 1, CHECK_SIDE, CHECK_SIDE) and torch.isfinite(logits).all()
    segmenter = pipeline("image-segmentation", model=str(folder), image_processor=processor)
    segments = segmenter(image)
    assert {segment["label"] for segment in segments} <= {"background", "foreground"} and segments
    assert all(segment["mask"].size == (70, 50) for segment in segments)


def _no_auto_class_leak() -> None:
    """Publishing registers the classes for the Auto classes only while saving."""
    from birefnet_hf.image_processing_birefnet import BiRefNetImageProcessor as Processor

    for cls in (BiRefNetForImageSegmentation, BiRefNetConfig, Processor):
        assert "_auto_class" not in cls.__dict__, cls


# ------------------------------------------------------------------------------------------------- dry runs
def test_dry_run_pvt_v2_b0(tmp_path, eval_results_json):
    output = tmp_path / "out"
    code = main(
        [
            "--random-init", "--dry-run", "--output-dir", str(output), "--only", "pvt_v2_b0",
            "--eval-results", f"pvt_v2_b0={eval_results_json}", "--repo-id", "pvt_v2_b0=my-org/birefnet-b0",
            "--no-check-remote-code",
        ]
    )
    assert code == 0
    assert sorted(p.name for p in output.iterdir()) == ["pvt_v2_b0"]  # nothing else (no staging leftovers)
    folder = output / "pvt_v2_b0"
    _no_auto_class_leak()
    _check_folder_with_package(folder, "pvt_v2_b0")
    card = _check_card(folder / "README.md", "pvt_v2_b0", eval_results_json, repo_id="my-org/birefnet-b0")
    assert "Randomly initialised (dry run)" in card.text

    # a fresh process without birefnet_hf: trust_remote_code loads the folder's code and reproduces our logits
    reference = BiRefNetForImageSegmentation.from_pretrained(folder).eval()
    report = check_remote_code(folder, reference_model=reference)
    assert report["model_class"].startswith("transformers_modules.")
    assert report["model_class"].endswith("modeling_birefnet.BiRefNetForImageSegmentation")
    assert report["processor_class"].endswith("image_processing_birefnet.BiRefNetImageProcessor")
    assert report["birefnet_hf_loaded"] is False
    assert set(report["labels"]) <= {"background", "foreground"} and report["labels"]

    # the check fails when the folder lacks its code (so it cannot be passing through an installed birefnet_hf)
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "deformable_conv.py").unlink()
    with pytest.raises(RuntimeError, match="trust_remote_code"):
        check_remote_code(broken)

    # a second dry run into the same folder needs --overwrite, which replaces it atomically
    argv = ["--random-init", "--dry-run", "--output-dir", str(output), "--only", "pvt_v2_b0", "--no-check-remote-code"]
    assert main(argv) == 2
    assert main(argv + ["--overwrite", "--seed", "1"]) == 0
    assert sorted(p.name for p in output.iterdir()) == ["pvt_v2_b0"]
    _check_card(output / "pvt_v2_b0" / "README.md", "pvt_v2_b0", None)


def test_publish_runs_the_remote_code_check(tmp_path, monkeypatch):
    """The default build checks each folder in a fresh process; a failing check leaves no folder behind."""
    import birefnet_hf.publish as publish_module

    calls = []

    def failing_check(folder, reference_model=None, timeout=600.0):
        calls.append((Path(folder), reference_model))
        assert (Path(folder) / "modeling_birefnet.py").is_file() and reference_model is not None
        raise RuntimeError("remote code broken")

    monkeypatch.setattr(publish_module, "check_remote_code", failing_check)
    output = tmp_path / "out"
    with pytest.raises(RuntimeError, match="remote code broken"):
        main(["--random-init", "--dry-run", "--output-dir", str(output), "--only", "pvt_v2_b0"])
    assert len(calls) == 1
    assert list(output.iterdir()) == []  # the staging folder is removed, nothing half-written


@pytest.mark.slow
def test_dry_run_all_sizes(tmp_path, eval_results_json):
    output = tmp_path / "out"
    code = main(
        [
            "--random-init", "--dry-run", "--output-dir", str(output),
            "--eval-results", f"pvt_v2_b1={eval_results_json}", "--repo-prefix", "my-org/birefnet-",
        ]
    )  # the remote-code check (fresh process, no birefnet_hf, logits compared) runs for every size
    assert code == 0
    assert sorted(p.name for p in output.iterdir()) == sorted(HUB_SIZES)
    for size in HUB_SIZES:
        folder = output / size
        _check_folder_with_package(folder, size)
        _check_card(folder / "README.md", size, eval_results_json if size == "pvt_v2_b1" else None,
                    repo_id=f"my-org/birefnet-{size}")
    _no_auto_class_leak()


# ------------------------------------------------------------------------------------------------ validation
@pytest.fixture
def online_without_token(monkeypatch, tmp_path):
    """No offline mode and no token anywhere (env or saved login), inside this test only."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-stored-tokens"))


@pytest.fixture
def weights_without_config(tmp_path, tiny_model_dir) -> Path:
    """pvt_v2_b0 weights in a folder without config.json (only the tensors can tell what they are)."""
    folder = tmp_path / "bare-weights"
    folder.mkdir()
    shutil.copy(tiny_model_dir / "model.safetensors", folder / "model.safetensors")
    return folder


def _error(capsys) -> str:
    return capsys.readouterr().err


def test_option_errors(tmp_path, capsys, tiny_model_dir, eval_results_json):
    out = ["--output-dir", str(tmp_path / "out")]
    assert main(["--random-init", "--only", "pvt_v2_b0"]) == 2
    assert "--random-init is for dry runs only" in _error(capsys)
    assert main(["--random-init", "--dry-run", "--only", "pvt_v2_b0"]) == 2
    assert "--dry-run needs --output-dir" in _error(capsys)
    assert main(["--dry-run", *out, "--weights-dir", f"pvt_v2_b0={tiny_model_dir}"]) == 2
    error = _error(capsys)
    assert "swin_v1_t: no weights" in error and "pvt_v2_b5: no weights" in error and "--only" in error
    assert main(["--dry-run", *out, "--only", "pvt_v2_b0", "--weights-dir", f"swin_v1_t={tiny_model_dir}"]) == 2
    assert "not being published" in _error(capsys)
    assert main(["--dry-run", *out, "--only", "pvt_v2_b0", "--weights-dir", str(tiny_model_dir)]) == 2
    assert "expected SIZE=VALUE" in _error(capsys)
    assert main(["--dry-run", *out, "--only", "pvt_v2_b0", "--weights-dir", f"pvt_v2_b0={tmp_path / 'nope'}"]) == 2
    assert "is not a folder" in _error(capsys)
    assert main(["--dry-run", *out, "--only", "pvt_v2_b0", "--random-init", "--repo-id", "pvt_v2_b0=no-owner"]) == 2
    assert "has no owner" in _error(capsys)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    assert main(["--dry-run", *out, "--only", "pvt_v2_b0", "--random-init", "--eval-results", f"pvt_v2_b0={bad_json}"]) == 2
    assert f"{bad_json} is not a JSON file" in _error(capsys)
    no_results = tmp_path / "empty.json"
    no_results.write_text(json.dumps({"model": "x", "sets": {"DIS-VD": {"num_images": 3}}}))
    assert main(["--dry-run", *out, "--only", "pvt_v2_b0", "--random-init", "--eval-results", f"pvt_v2_b0={no_results}"]) == 2
    assert "no evaluation results found" in _error(capsys)
    # uploads: a repository and evaluation results for every size
    assert main(["--only", "pvt_v2_b0", "--weights-dir", f"pvt_v2_b0={tiny_model_dir}", "--token", "x"]) == 2
    error = _error(capsys)
    assert "no --eval-results" in error and "no repository id" in error
    assert not (tmp_path / "out").exists()


def test_upload_errors_before_anything_is_sent(tmp_path, capsys, tiny_model_dir, eval_results_json,
                                               online_without_token, weights_without_config):
    hub = FakeHub()
    hub_http.set_client_factory(hub.client)
    try:
        base = ["--only", "pvt_v2_b0", "--eval-results", f"pvt_v2_b0={eval_results_json}",
                "--repo-prefix", "my-org/birefnet-", "--no-check-remote-code"]
        assert main(base + ["--weights-dir", f"pvt_v2_b0={tiny_model_dir}"]) == 2
        assert "no Hugging Face token" in _error(capsys)
        # weights that do not fit the published config: checked for every size before building or uploading
        two = ["--only", "pvt_v2_b0", "pvt_v2_b1", "--eval-results", f"pvt_v2_b0={eval_results_json}",
               "--eval-results", f"pvt_v2_b1={eval_results_json}", "--repo-prefix", "my-org/birefnet-", "--token", "hf_fake", "--no-check-remote-code",
               "--weights-dir", f"pvt_v2_b0={tiny_model_dir}", "--weights-dir", f"pvt_v2_b1={weights_without_config}"]
        assert main(two) == 2
        error = _error(capsys)
        assert "the weights do not match the published pvt_v2_b1 config" in error and "shape mismatch" in error
        two[two.index(f"pvt_v2_b1={weights_without_config}")] = f"pvt_v2_b1={tiny_model_dir}"
        assert main(two) == 2
        assert "backbone: 'pvt_v2_b0' (weights) vs 'pvt_v2_b1' (published)" in _error(capsys)
        assert hub.requests == []
    finally:
        hub_http.set_client_factory(hub_http.default_client_factory)


@pytest.fixture(scope="module")
def authors_checkpoint(tmp_path_factory) -> Path:
    """A pvt_v2_b0 checkpoint in the authors' layout (their tensor names and shapes, random values)."""
    from safetensors.torch import save_file

    keys = json.loads((REPO_ROOT / "tests" / "fixtures" / "parity" / "keys" / "pvt_v2_b0.json").read_text())
    generator = torch.Generator().manual_seed(0)
    state = {}
    for name, shape, dtype in keys:
        if dtype.startswith("float"):
            state[name] = torch.rand(shape, generator=generator, dtype=getattr(torch, dtype))
        else:
            state[name] = torch.zeros(shape, dtype=getattr(torch, dtype))
    path = tmp_path_factory.mktemp("authors") / "BiRefNet-pvt_v2_b0-epoch_1.safetensors"
    save_file(state, str(path))
    return path


def test_authors_checkpoint_is_converted(tmp_path, capsys, authors_checkpoint):
    from birefnet_hf.convert_birefnet_original_to_hf import convert_checkpoint, load_original_state_dict

    output = tmp_path / "out"
    code = main(["--dry-run", "--output-dir", str(output), "--only", "pvt_v2_b0",
                 "--checkpoint", f"pvt_v2_b0={authors_checkpoint}", "--no-check-remote-code"])
    assert code == 0, capsys.readouterr().err
    expected = convert_checkpoint(load_original_state_dict(authors_checkpoint)).state_dict()
    saved = load_file(output / "pvt_v2_b0" / "model.safetensors")
    assert saved.keys() <= expected.keys()
    for key, value in saved.items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0)
    card = ModelCard.load(output / "pvt_v2_b0" / "README.md")
    assert authors_checkpoint.name in card.text and "converted" in card.text

    # the same checkpoint given for another size is rejected before anything is built
    code = main(["--dry-run", "--output-dir", str(tmp_path / "other"), "--only", "pvt_v2_b1",
                 "--checkpoint", f"pvt_v2_b1={authors_checkpoint}"])
    assert code == 2
    assert "holds a pvt_v2_b0 model, not pvt_v2_b1" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_training_folder_with_auxiliary_classifier(tmp_path, capsys):
    """A model trained with the auxiliary classification head is published without it (training only)."""
    torch.manual_seed(0)
    trained = BiRefNetForImageSegmentation(BiRefNetConfig(backbone="pvt_v2_b0", auxiliary_classification=True))
    trained.save_pretrained(tmp_path / "trained")
    output = tmp_path / "out"
    code = main(["--dry-run", "--output-dir", str(output), "--only", "pvt_v2_b0",
                 "--weights-dir", f"pvt_v2_b0={tmp_path / 'trained'}", "--no-check-remote-code"])
    assert code == 0, capsys.readouterr().err
    saved = load_file(output / "pvt_v2_b0" / "model.safetensors")
    state = trained.state_dict()
    assert not [key for key in saved if key.startswith("localization.classifier.")]
    assert set(saved) == {key for key in state if not key.startswith("localization.classifier.")}
    for key, value in saved.items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)
    assert json.loads((output / "pvt_v2_b0" / "config.json").read_text())["auxiliary_classification"] is False


# ---------------------------------------------------------------------------------------------- fake Hub
class FakeHub:
    """An in-process fake of the Hub endpoints that `create_repo` + `upload_folder` use (LFS basic transfer)."""

    def __init__(self):
        self.endpoint = httpx2.URL(constants.ENDPOINT)
        self.requests: list[tuple[str, str]] = []
        self.unexpected: list[str] = []
        self.created: list[dict] = []
        self.validated_readmes: list[str] = []
        self.preuploads: list[dict] = []
        self.lfs_store: dict[str, bytes] = {}
        self.verified: list[str] = []
        self.commits: list[dict] = []
        self.settings: list[dict] = []

    def client(self) -> httpx2.Client:
        return httpx2.Client(
            transport=httpx2.MockTransport(self.handle),
            event_hooks={"request": [hub_http.hf_request_event_hook]},
            follow_redirects=True,
        )

    def _json(self, status: int, payload) -> httpx2.Response:
        return httpx2.Response(status, json=payload)

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        self.requests.append((request.method, str(url)))
        if url.host != self.endpoint.host:
            self.unexpected.append(f"{request.method} {url} (other host)")
            return self._json(500, {"error": "unexpected host"})
        assert request.headers.get("authorization") == "Bearer hf_fake" or url.path.startswith("/fake-lfs/")
        path = url.path
        parts = path.strip("/").split("/")
        if request.method == "POST" and path == "/api/repos/create":
            body = json.loads(request.content)
            self.created.append(body)
            repo_id = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
            return self._json(200, {"url": f"{self.endpoint}/{repo_id}", "name": repo_id})
        if request.method == "PUT" and parts[:2] == ["api", "models"] and len(parts) == 5 and parts[4] == "settings":
            self.settings.append({"repo": "/".join(parts[2:4]), **json.loads(request.content)})
            return self._json(200, {})
        if request.method == "POST" and path == "/api/validate-yaml":
            content = json.loads(request.content)["content"]
            self.validated_readmes.append(content)
            metadata = yaml.safe_load(content.split("---")[1])
            errors = [] if isinstance(metadata, dict) else [{"message": "no metadata"}]
            return self._json(400 if errors else 200, {"errors": errors, "warnings": []})
        if request.method == "POST" and parts[:2] == ["api", "models"] and len(parts) == 6 and parts[4] == "preupload":
            body = json.loads(request.content)
            self.preuploads.append({"repo": "/".join(parts[2:4]), "revision": parts[5], "params": dict(url.params)})
            files = [
                {
                    "path": file["path"],
                    "uploadMode": "lfs" if file["path"].endswith(".safetensors") or file["size"] > 10_000_000 else "regular",
                    "shouldIgnore": False,
                    "oid": None,
                }
                for file in body["files"]
            ]
            return self._json(200, {"files": files, "commitOid": "0" * 40})
        if request.method == "POST" and path.endswith(".git/info/lfs/objects/batch"):
            body = json.loads(request.content)
            assert body["operation"] == "upload"
            objects = [
                {
                    "oid": obj["oid"],
                    "size": obj["size"],
                    "actions": {
                        "upload": {"href": f"{self.endpoint}/fake-lfs/{obj['oid']}"},
                        "verify": {"href": f"{self.endpoint}/fake-lfs-verify"},
                    },
                }
                for obj in body["objects"]
            ]
            return self._json(200, {"transfer": "basic", "objects": objects})
        if request.method == "PUT" and path.startswith("/fake-lfs/"):
            content = request.read()
            oid = path.rsplit("/", 1)[1]
            assert hashlib.sha256(content).hexdigest() == oid
            self.lfs_store[oid] = content
            return httpx2.Response(200)
        if request.method == "POST" and path == "/fake-lfs-verify":
            body = json.loads(request.content)
            assert body["oid"] in self.lfs_store and len(self.lfs_store[body["oid"]]) == body["size"]
            self.verified.append(body["oid"])
            return self._json(200, {})
        if request.method == "POST" and parts[:2] == ["api", "models"] and len(parts) == 6 and parts[4] == "commit":
            lines = [json.loads(line) for line in request.content.decode().splitlines() if line.strip()]
            commit = {"repo": "/".join(parts[2:4]), "revision": parts[5], "params": dict(url.params), "files": {}}
            for line in lines:
                if line["key"] == "header":
                    commit["header"] = line["value"]
                elif line["key"] == "file":
                    assert line["value"]["encoding"] == "base64"
                    commit["files"][line["value"]["path"]] = base64.b64decode(line["value"]["content"])
                elif line["key"] == "lfsFile":
                    value = line["value"]
                    assert value["algo"] == "sha256" and value["oid"] in self.lfs_store
                    commit["files"][value["path"]] = self.lfs_store[value["oid"]]
                else:
                    self.unexpected.append(f"commit operation {line['key']}")
            self.commits.append(commit)
            pr = "create_pr" in url.params
            return self._json(
                200,
                {
                    "commitUrl": f"{self.endpoint}/{commit['repo']}/commit/{'1' * 40}",
                    "commitOid": "1" * 40,
                    "pullRequestUrl": f"{self.endpoint}/{commit['repo']}/discussions/1" if pr else None,
                },
            )
        self.unexpected.append(f"{request.method} {url}")
        return self._json(404, {"error": "not faked"})


@pytest.fixture
def fake_hub(monkeypatch, online_without_token):
    """Route huggingface_hub's HTTP client to FakeHub for this test only. hf_xet (which does its own networking in
    Rust) is switched off so that the weights take the LFS path through the same client."""
    import huggingface_hub._commit_api as commit_api
    import huggingface_hub.hf_api as hf_api
    import huggingface_hub.utils._xet as xet

    def no_xet(*args, **kwargs):
        raise AssertionError("the test tried to open a hf_xet session (networking outside the fake Hub)")

    monkeypatch.setattr(commit_api, "is_xet_available", lambda: False)
    monkeypatch.setattr(hf_api, "is_xet_available", lambda: False)
    monkeypatch.setattr(xet, "get_xet_session", no_xet)
    hub = FakeHub()
    hub_http.set_client_factory(hub.client)
    try:
        yield hub
    finally:
        hub_http.set_client_factory(hub_http.default_client_factory)


def test_upload_to_fake_hub(tmp_path, fake_hub, tiny_model_dir, eval_results_json, capsys):
    output = tmp_path / "kept"
    code = main(
        [
            "--only", "pvt_v2_b0",
            "--weights-dir", f"pvt_v2_b0={tiny_model_dir}",
            "--eval-results", f"pvt_v2_b0={eval_results_json}",
            "--repo-id", "pvt_v2_b0=my-org/BiRefNet-tiny",
            "--token", "hf_fake",
            "--private", "--create-pr",
            "--output-dir", str(output),
            "--no-check-remote-code",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert fake_hub.unexpected == []
    assert all(httpx2.URL(url).host == fake_hub.endpoint.host for _, url in fake_hub.requests)
    assert fake_hub.created == [
        {"name": "BiRefNet-tiny", "organization": "my-org", "visibility": "private", "type": "model"}
    ]
    assert len(fake_hub.commits) == 1  # one commit with every file
    commit = fake_hub.commits[0]
    assert commit["repo"] == "my-org/BiRefNet-tiny" and commit["revision"] == "main"
    assert commit["params"] == {"create_pr": "1"}
    assert commit["header"]["summary"] == "Upload BiRefNet pvt_v2_b0"
    assert set(commit["files"]) >= FOLDER_FILES
    # the commit carries exactly the built folder
    folder = output / "pvt_v2_b0"
    assert set(commit["files"]) == {p.name for p in folder.iterdir()}
    for name, content in commit["files"].items():
        assert content == (folder / name).read_bytes(), name
    # weights: the trained folder's tensors, uploaded through LFS
    assert len(fake_hub.verified) == 1
    uploaded = load_file(folder / "model.safetensors")
    trained = load_file(tiny_model_dir / "model.safetensors")
    assert uploaded.keys() == trained.keys()
    for key in trained:
        torch.testing.assert_close(uploaded[key], trained[key], rtol=0, atol=0)
    config = json.loads(commit["files"]["config.json"])
    assert config["backbone"] == "pvt_v2_b0" and "AutoModelForImageSegmentation" in config["auto_map"]
    assert json.loads(commit["files"]["preprocessor_config.json"])["auto_map"]["AutoImageProcessor"]
    # the card sent for validation is the committed one, with model-index from the evaluation JSON
    assert fake_hub.validated_readmes == [commit["files"]["README.md"].decode()]
    card = _check_card(folder / "README.md", "pvt_v2_b0", eval_results_json, repo_id="my-org/BiRefNet-tiny")
    assert "examples/train.py" in card.text
    out = capsys.readouterr().out
    assert "my-org/BiRefNet-tiny" in out and "discussions/1" in out
    _no_auto_class_leak()


def test_gated_family_repository_is_gated_before_its_files_are_uploaded(tmp_path, fake_hub):
    """A gated family (RMBG-2.0) is uploaded to a repository gated with gated="auto" before the commit."""
    from birefnet_hf.publish import upload_folder

    folder = tmp_path / "RMBG-2.0"
    folder.mkdir()
    (folder / "README.md").write_text("---\nlicense: cc-by-nc-4.0\n---\n# RMBG-2.0\n")
    (folder / "config.json").write_text("{}")
    upload_folder(folder, "my-org/RMBG-2.0-hf", "hf_fake", private=False, create_pr=False, commit_message="m",
                  gated=True)
    assert fake_hub.unexpected == []
    assert fake_hub.settings == [{"repo": "my-org/RMBG-2.0-hf", "gated": "auto"}]
    methods = [method for method, _ in fake_hub.requests]
    settings_at = methods.index("PUT")
    commit_at = next(i for i, (method, url) in enumerate(fake_hub.requests) if url.endswith("/commit/main"))
    assert settings_at < commit_at and len(fake_hub.commits) == 1
    upload_folder(folder, "my-org/BiRefNet-hf", "hf_fake", private=False, create_pr=False, commit_message="m")
    assert len(fake_hub.settings) == 1  # not gated unless asked
