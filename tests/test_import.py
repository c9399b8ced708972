# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""``import birefnet_hf`` is cheap (no torch, no transformers) and BiRefNet still gets registered with the Auto
classes and pipelines whenever, and in whatever order, transformers loads them (birefnet_hf.auto_registration).

Each scenario runs in a fresh interpreter, since what matters is which modules a process has loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import birefnet_hf
from birefnet_hf import auto_registration

REPOSITORY = Path(__file__).resolve().parents[1]

#: Prints what is registered: run at the end of each scenario.
REPORT = """
import json, sys
registered = {}
if "transformers.models.auto.configuration_auto" in sys.modules:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    registered["config"] = "birefnet" in CONFIG_MAPPING and CONFIG_MAPPING["birefnet"].__module__
if "transformers.models.auto.modeling_auto" in sys.modules:
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_SEGMENTATION_MAPPING, MODEL_MAPPING
    from birefnet_hf.configuration_birefnet import BiRefNetConfig
    registered["model"] = BiRefNetConfig in MODEL_MAPPING and MODEL_MAPPING[BiRefNetConfig].__name__
    registered["segmentation"] = (BiRefNetConfig in MODEL_FOR_IMAGE_SEGMENTATION_MAPPING
                                  and MODEL_FOR_IMAGE_SEGMENTATION_MAPPING[BiRefNetConfig].__name__)
if "transformers.models.auto.image_processing_auto" in sys.modules:
    from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING
    from birefnet_hf.configuration_birefnet import BiRefNetConfig
    registered["image_processor"] = (BiRefNetConfig in IMAGE_PROCESSOR_MAPPING
                                     and sorted(IMAGE_PROCESSOR_MAPPING[BiRefNetConfig]))
if "transformers.pipelines" in sys.modules:
    from transformers.pipelines import PIPELINE_REGISTRY
    registered["pipeline"] = "background-removal" in PIPELINE_REGISTRY.get_supported_tasks()
from birefnet_hf.auto_registration import AutoRegistrationFinder
registered["finder_installed"] = any(isinstance(f, AutoRegistrationFinder) for f in sys.meta_path)
print("REPORT " + json.dumps(registered))
"""

ALL_REGISTERED = {
    "config": "birefnet_hf.configuration_birefnet",
    "model": "BiRefNetModel",
    "segmentation": "BiRefNetForImageSegmentation",
    "image_processor": ["pil", "torchvision"],
    "pipeline": True,
    "finder_installed": False,
}


def run_python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), env.get("PYTHONPATH", "")]))
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    return completed


def registered_after(code: str) -> dict:
    output = run_python(textwrap.dedent(code) + REPORT).stdout
    return json.loads(output.split("REPORT ", 1)[1])


def test_import_birefnet_hf_loads_neither_torch_nor_transformers():
    output = run_python(
        """
        import sys
        import birefnet_hf
        heavy = [name for name in ("torch", "transformers", "transformers.modeling_utils",
                 "transformers.image_processing_utils", "PIL", "numpy") if name in sys.modules]
        print(",".join(heavy) or "none")
        """
    ).stdout
    assert output.strip() == "none"


@pytest.mark.parametrize(
    "code",
    [
        # transformers fully loaded before the package: everything registered during `import birefnet_hf`
        "from transformers import pipeline\nimport birefnet_hf",
        # the model module loads transformers.modeling_utils (and with it configuration_auto) while it loads itself
        "from birefnet_hf.modeling_birefnet import BiRefNetModel\nfrom transformers import pipeline",
        # birefnet_hf.pipelines loads transformers.pipelines (every trigger) while it is halfway through loading
        "import birefnet_hf.pipelines",
        # a public name, loaded on first access (PEP 562), whose module imports the Auto classes and pipelines
        "import sys, birefnet_hf\n"
        "assert 'birefnet_hf.background_removal' not in sys.modules\n"
        "from birefnet_hf import remove_background\n"
        "assert remove_background.__module__ == 'birefnet_hf.background_removal'\n"
        "assert birefnet_hf.remove_background is remove_background",
    ],
    ids=["transformers-first", "model-module-first", "pipelines-module", "public-name"],
)
def test_everything_is_registered_in_any_import_order(code):
    assert registered_after(code) == ALL_REGISTERED


def test_each_registration_waits_only_for_its_own_auto_module():
    registered = registered_after(
        """
        import sys
        import birefnet_hf
        from transformers import AutoConfig
        assert "transformers.modeling_utils" not in sys.modules, "AutoConfig alone loaded the model code"
        assert "birefnet_hf.modeling_birefnet" not in sys.modules
        """
    )
    assert registered == {"config": "birefnet_hf.configuration_birefnet", "finder_installed": True}


def test_auto_classes_load_birefnet_from_a_folder(tiny_model_dir_64):
    """AutoConfig / AutoModel / AutoModelForImageSegmentation / AutoImageProcessor / pipeline in a process where
    only `import birefnet_hf` registered anything (tiny pvt_v2_b0 model and 64-px processor saved in a folder)."""
    output = run_python(
        f"""
        import sys
        import numpy as np
        import PIL.Image
        import birefnet_hf
        from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForImageSegmentation, pipeline
        folder = {str(tiny_model_dir_64)!r}
        names = [type(AutoConfig.from_pretrained(folder)).__name__,
                 type(AutoModel.from_pretrained(folder)).__name__,
                 type(AutoModelForImageSegmentation.from_pretrained(folder)).__name__,
                 type(AutoImageProcessor.from_pretrained(folder)).__name__]
        segmenter = pipeline("image-segmentation", model=folder)
        result = segmenter(PIL.Image.fromarray(np.zeros((40, 48, 3), np.uint8)))
        names.append(result[0]["mask"].size)
        names.append(any(type(finder).__name__ == "AutoRegistrationFinder" for finder in sys.meta_path))
        print(names)
        """
    ).stdout
    assert output.strip().splitlines()[-1] == str(
        [
            "BiRefNetConfig",
            "BiRefNetModel",
            "BiRefNetForImageSegmentation",
            "BiRefNetImageProcessor",
            (48, 40),
            False,
        ]
    )


def test_every_public_name_and_submodule_attribute_resolves():
    for name in birefnet_hf.__all__:
        assert getattr(birefnet_hf, name) is not None, name
    assert set(birefnet_hf.__all__) <= set(dir(birefnet_hf))
    assert birefnet_hf.register_pipelines.__module__ == "birefnet_hf.pipelines"
    assert birefnet_hf.auto_registration is auto_registration
    assert birefnet_hf.segment.__name__ == "birefnet_hf.segment"
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        _ = birefnet_hf.not_a_name


def test_the_triggers_are_where_transformers_defines_the_auto_classes():
    """The one assumption on transformers: if a release moves an Auto class, this fails (and at run time
    `install_auto_registration` falls back to eager registration when a trigger file is missing)."""
    import transformers
    import transformers.pipelines

    for registration in auto_registration.AUTO_REGISTRATIONS:
        module = sys.modules[registration.trigger]
        assert hasattr(module, registration.defines), registration
        if registration.defines != "PIPELINE_REGISTRY":
            assert getattr(transformers, registration.defines).__module__ == registration.trigger
    assert auto_registration.trigger_files_exist(auto_registration.AUTO_REGISTRATIONS)


def test_a_missing_trigger_file_means_eager_registration():
    calls = []
    registration = auto_registration.AutoRegistration(
        "transformers.models.auto.no_such_module", "Nothing", (), lambda: calls.append("registered")
    )
    assert not auto_registration.trigger_files_exist([registration])
    finders_before = list(sys.meta_path)
    auto_registration.install_auto_registration([registration])
    assert calls == ["registered"]
    assert sys.meta_path == finders_before


def test_a_trigger_without_its_auto_class_is_a_clear_error():
    registration = auto_registration.AutoRegistration("json", "AutoConfig", (), lambda: None)
    with pytest.raises(ImportError, match="`json`.*has no `AutoConfig`.*moved the Auto classes"):
        auto_registration.check_trigger(registration)


def test_a_failing_registration_is_logged_and_retried_not_raised_into_the_import():
    output = run_python(
        """
        import sys
        from birefnet_hf import auto_registration as ar
        attempts = []
        def register():
            attempts.append(1)
            if len(attempts) == 1:
                raise RuntimeError("first attempt fails")
        finder = ar.AutoRegistrationFinder([ar.AutoRegistration("colorsys", "rgb_to_hsv", ("sched",), register)])
        sys.meta_path.insert(0, finder)
        import colorsys                      # the import itself succeeds; the failure is logged
        assert len(attempts) == 1 and finder in sys.meta_path
        import sched                         # the next watched module to load retries it
        assert len(attempts) == 2 and finder not in sys.meta_path
        print("ok")
        """
    )
    assert output.stdout.strip() == "ok"
    assert "BiRefNet could not be registered with `colorsys`" in output.stderr
    assert "RuntimeError: first attempt fails" in output.stderr
