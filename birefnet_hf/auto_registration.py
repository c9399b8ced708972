# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""BiRefNet's registration with transformers' Auto classes and pipeline registry, done when transformers loads them.

transformers resolves its own models by name (``model_type`` -> module -> class), but a model that lives outside
transformers can only be registered with class objects: ``AutoConfig.register(model_type, config_class)``,
``AutoModel.register(config_class, model_class)``, ``AutoImageProcessor.register(config_class, {...})`` and
``PIPELINE_REGISTRY.register_pipeline(...)``. Calling them when ``birefnet_hf`` is imported means importing the
Auto modules, ``transformers.modeling_utils``, ``transformers.image_processing_utils``, ``transformers.pipelines``
and torch: about 90 % of the cost of ``import birefnet_hf`` (``benchmarks/import_time.py``).

So ``import birefnet_hf`` only puts a finder on ``sys.meta_path`` ([`install_auto_registration`]). It watches
the modules that define the Auto classes; once one of them has finished loading (a user's ``from transformers
import AutoModel``, ``pipeline(...)``, or loading code inside transformers), the matching registration runs, with
the public ``register`` calls above:

| transformers module                               | registers                                            |
|---------------------------------------------------|------------------------------------------------------|
| ``transformers.models.auto.configuration_auto``   | ``AutoConfig``: ``"birefnet"`` -> `BiRefNetConfig`   |
| ``transformers.models.auto.modeling_auto``        | ``AutoModel``, ``AutoModelForImageSegmentation``      |
| ``transformers.models.auto.image_processing_auto`` | ``AutoImageProcessor`` (torchvision and PIL backends) |
| ``transformers.pipelines``                        | the ``background-removal`` task                      |

A module already loaded when ``birefnet_hf`` is imported is registered with at once. A registration waits while
one of the package modules it needs (e.g. ``modeling_birefnet``) is itself still loading (importing it is what
loaded the transformers module), and runs when that module is done. When every registration has run, the finder
removes itself. Nothing of transformers is patched: the finder only observes imports (Python's import hook
protocol, PEP 451) and the registrations are transformers' public API.

The one assumption on transformers is where the Auto classes are defined (the module names above; the
``models/auto/`` layout dates from transformers 4.0). It is checked twice: if one of those files is missing from
the installed transformers, registration falls back to the old, eager way (everything imported and registered at
once: slow, but correct); and a watched module that loads without the class it should define gets an error logged
that names it. (A failing registration is logged, not raised: it runs inside transformers' own import, which must
not fail half-way.) ``tests/test_import.py`` pins the module names against the installed transformers.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "install_auto_registration",
    "register_config",
    "register_models",
    "register_image_processors",
    "register_background_removal_pipeline",
]


def register_config() -> None:
    """``AutoConfig``: ``model_type`` "birefnet" -> [`BiRefNetConfig`]."""
    from transformers.models.auto.configuration_auto import AutoConfig

    from .configuration_birefnet import BiRefNetConfig

    AutoConfig.register(BiRefNetConfig.model_type, BiRefNetConfig, exist_ok=True)


def register_models() -> None:
    """``AutoModel`` -> [`BiRefNetModel`], ``AutoModelForImageSegmentation`` -> [`BiRefNetForImageSegmentation`]."""
    from transformers.models.auto.modeling_auto import AutoModel, AutoModelForImageSegmentation

    from .configuration_birefnet import BiRefNetConfig
    from .modeling_birefnet import BiRefNetForImageSegmentation, BiRefNetModel

    AutoModel.register(BiRefNetConfig, BiRefNetModel, exist_ok=True)
    AutoModelForImageSegmentation.register(BiRefNetConfig, BiRefNetForImageSegmentation, exist_ok=True)


def register_image_processors() -> None:
    """``AutoImageProcessor`` -> [`BiRefNetImageProcessor`] (torchvision, the default) and the PIL backend."""
    from transformers.models.auto.image_processing_auto import AutoImageProcessor

    from .configuration_birefnet import BiRefNetConfig
    from .image_processing_birefnet import BiRefNetImageProcessor, BiRefNetImageProcessorPil

    AutoImageProcessor.register(
        BiRefNetConfig,
        image_processor_classes={"torchvision": BiRefNetImageProcessor, "pil": BiRefNetImageProcessorPil},
        exist_ok=True,
    )


def register_background_removal_pipeline() -> None:
    """The ``background-removal`` task ([`BackgroundRemovalPipeline`]) in transformers' pipeline registry."""
    from .pipelines import register_pipelines

    register_pipelines()


@dataclass(frozen=True)
class AutoRegistration:
    """One registration: run `register` once the transformers module `trigger` (which defines `defines`) has
    loaded and none of the package modules `needs` is halfway through loading."""

    trigger: str
    defines: str
    needs: tuple[str, ...]
    register: Callable[[], None]


#: The registrations, in the order transformers loads their trigger modules.
AUTO_REGISTRATIONS: tuple[AutoRegistration, ...] = (
    AutoRegistration(
        "transformers.models.auto.configuration_auto",
        "AutoConfig",
        ("birefnet_hf.configuration_birefnet",),
        register_config,
    ),
    AutoRegistration(
        "transformers.models.auto.modeling_auto",
        "AutoModelForImageSegmentation",
        ("birefnet_hf.configuration_birefnet", "birefnet_hf.modeling_birefnet"),
        register_models,
    ),
    AutoRegistration(
        "transformers.models.auto.image_processing_auto",
        "AutoImageProcessor",
        ("birefnet_hf.configuration_birefnet", "birefnet_hf.image_processing_birefnet"),
        register_image_processors,
    ),
    AutoRegistration(
        "transformers.pipelines",
        "PIPELINE_REGISTRY",
        ("birefnet_hf.pipelines",),
        register_background_removal_pipeline,
    ),
)


class _NotifyingLoader(importlib.abc.Loader):
    """Runs a module with its own loader, then tells the finder that it has loaded."""

    def __init__(self, loader: importlib.abc.Loader, finder: AutoRegistrationFinder) -> None:
        self.loader = loader
        self.finder = finder

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        # The module keeps its real loader (`inspect`, `importlib.resources` and reloads use it).
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        name = module.__name__
        self.finder.module_started(name)
        try:
            self.loader.exec_module(module)
        finally:
            self.finder.module_stopped(name)
        self.finder.module_loaded(name)


class AutoRegistrationFinder(importlib.abc.MetaPathFinder):
    """A `sys.meta_path` finder that finds nothing itself: for the modules the registrations watch it returns the
    spec the other finders return, with a loader that reports when the module has loaded (see the module
    docstring). Registrations that can run, run then; the finder leaves `sys.meta_path` after the last one."""

    def __init__(self, registrations: Sequence[AutoRegistration]) -> None:
        self.pending = list(registrations)
        self.watched = {r.trigger for r in registrations} | {name for r in registrations for name in r.needs}
        self.loading: set[str] = set()
        self.lock = threading.RLock()
        self.searching = threading.local()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.watched or getattr(self.searching, "name", None) == fullname:
            return None
        self.searching.name = fullname
        try:
            for finder in list(sys.meta_path):
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
            else:
                return None
        finally:
            self.searching.name = None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec  # a namespace package or a legacy loader: not watched
        spec.loader = _NotifyingLoader(spec.loader, self)
        return spec

    def module_started(self, name: str) -> None:
        with self.lock:
            self.loading.add(name)

    def module_stopped(self, name: str) -> None:
        with self.lock:
            self.loading.discard(name)

    def module_loaded(self, name: str) -> None:
        self.run_ready()

    def is_ready(self, registration: AutoRegistration) -> bool:
        return (
            registration.trigger in sys.modules
            and registration.trigger not in self.loading
            and not any(name in self.loading for name in registration.needs)
        )

    def run_ready(self) -> None:
        """Runs every pending registration whose trigger has loaded and whose package modules are not loading.
        A registration imports what it needs, which can load further watched modules and so call this again.

        This runs inside an import of a transformers module, so a failing registration does not raise (the import
        would fail half-way and leave transformers in a broken state): it is logged as an error and stays pending,
        tried again when a watched module loads next."""
        failed: list[AutoRegistration] = []
        while True:
            with self.lock:
                ready = next((r for r in self.pending if r not in failed and self.is_ready(r)), None)
                if ready is None:
                    if not self.pending and self in sys.meta_path:
                        sys.meta_path.remove(self)
                    return
                self.pending.remove(ready)
            try:
                check_trigger(ready)
                ready.register()
            except Exception as error:
                with self.lock:
                    self.pending.append(ready)
                failed.append(ready)
                from transformers.utils import logging

                logging.get_logger(__name__).error(
                    f"BiRefNet could not be registered with `{ready.trigger}` ({ready.register.__name__}): "
                    f"{type(error).__name__}: {error}",
                    exc_info=True,
                )


def check_trigger(registration: AutoRegistration) -> None:
    """Raises an `ImportError` if the trigger module does not define what the registration expects."""
    module = sys.modules[registration.trigger]
    if not hasattr(module, registration.defines):
        raise ImportError(
            f"birefnet_hf registers BiRefNet when transformers loads `{registration.trigger}`, but that module "
            f"has no `{registration.defines}` in the installed transformers: this version moved the Auto classes. "
            "Register by hand (see birefnet_hf.auto_registration) or install a transformers version birefnet_hf "
            "supports (setup.cfg)."
        )


def trigger_files_exist(registrations: Sequence[AutoRegistration]) -> bool:
    """Whether the installed transformers has a source file for every trigger module, found without importing
    transformers (a path check)."""
    spec = importlib.util.find_spec("transformers")
    if spec is None or not spec.submodule_search_locations:
        return False
    roots = [Path(location) for location in spec.submodule_search_locations]
    for registration in registrations:
        relative = Path(*registration.trigger.split(".")[1:])
        candidates = [relative.with_suffix(".py"), relative / "__init__.py"]
        if not any((root / candidate).is_file() for root in roots for candidate in candidates):
            return False
    return True


def install_auto_registration(registrations: Sequence[AutoRegistration] = AUTO_REGISTRATIONS) -> None:
    """Registers BiRefNet with the Auto classes and pipelines: at once for the transformers modules already loaded,
    the others when transformers loads them. Idempotent: a second call does nothing while a finder is installed.
    Falls back to registering everything now if the installed transformers lacks one of the trigger modules."""
    if any(isinstance(finder, AutoRegistrationFinder) for finder in sys.meta_path):
        return
    if not trigger_files_exist(registrations):
        for registration in registrations:
            registration.register()
        return
    finder = AutoRegistrationFinder(registrations)
    sys.meta_path.insert(0, finder)
    finder.run_ready()
