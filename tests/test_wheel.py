# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The built wheel works on its own: ``birefnet-hf publish`` from a wheel installed into a fresh virtual environment
finds its ``hub_configs`` (package data) and builds a folder that passes the remote-code check.

The virtual environment sees the system's site-packages (torch, transformers, ... come from there: nothing is
downloaded), which also hold this checkout's editable install; the test checks that every ``birefnet_hf`` module the
command imported is the wheel's copy in the virtual environment, never the checkout's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
#: What the wheel is built from: the packaging files and the package (no tests, no build leftovers).
SOURCE_FILES = ("pyproject.toml", "setup.cfg", "README.md")


def _run(command: list[str], cwd: Path, timeout: float = 600, offline: bool = True) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(HF_HUB_OFFLINE="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    if offline:
        env["PIP_NO_INDEX"] = "1"
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the sources (so that the build writes nothing into the checkout), offline
    with the installed setuptools where there is one."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in SOURCE_FILES:
        shutil.copy2(REPO_ROOT / name, source / name)
    shutil.copytree(
        REPO_ROOT / "birefnet_hf", source / "birefnet_hf", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    dist = root / "dist"
    # With the build backend installed (setuptools >= 69, pyproject.toml), build offline with it; otherwise pip
    # fetches it into an isolated build environment from the package index.
    try:
        import setuptools
        from packaging.version import Version

        offline = Version(setuptools.__version__) >= Version("69")
    except ImportError:
        offline = False
    isolation = ["--no-build-isolation"] if offline else []
    _run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", *isolation, "-w", str(dist)],
        cwd=root,
        offline=offline,
    )
    (wheel_path,) = dist.glob("birefnet_hf-*.whl")
    return wheel_path


@pytest.mark.slow
def test_wheel_holds_the_hub_configs(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    packaged = REPO_ROOT / "birefnet_hf" / "hub_configs_data"
    expected = {path.relative_to(REPO_ROOT).as_posix() for path in packaged.rglob("*") if path.is_file()}
    assert expected and expected <= names, sorted(expected - names)[:10]
    assert "birefnet_hf/publishing/remote_check.py" in names


@pytest.mark.slow
def test_publish_dry_run_from_the_installed_wheel(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], cwd=tmp_path)
    python, command = venv / "bin" / "python", venv / "bin" / "birefnet-hf"
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)], cwd=tmp_path)
    site_packages = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path)
        .stdout.strip()
    ).resolve()
    installed = site_packages / "birefnet_hf"

    work = tmp_path / "elsewhere"  # outside the checkout: the working directory puts nothing on sys.path
    work.mkdir()
    found = _run(
        [str(python), "-c", "import birefnet_hf, birefnet_hf.hub_configs as h; print(birefnet_hf.__file__); "
         "print(h.HUB_CONFIGS_DIR)"],
        cwd=work,
    ).stdout.split()
    assert [Path(path).resolve() for path in found] == [installed / "__init__.py", installed / "hub_configs_data"]

    # The console script, run by the venv's interpreter with -v: every birefnet_hf module it imports is named.
    result = _run(
        [str(python), "-v", str(command), "publish", "--random-init", "--dry-run", "--only", "pvt_v2_b0",
         "--output-dir", "out"],
        cwd=work,
    )
    assert "pvt_v2_b0: out/pvt_v2_b0 -> - (dry run: not uploaded)" in result.stdout
    imported = {
        Path(path).resolve()
        for path in re.findall(r"^# code object from '?([^'\n]*birefnet_hf/[^'\n]*)'?$", result.stderr, re.MULTILINE)
    }
    assert any(path.is_relative_to(installed) for path in imported)
    assert any("publishing" in path.parts for path in imported)
    outside = sorted(str(path) for path in imported if not path.is_relative_to(installed))
    assert not outside, f"birefnet_hf modules imported from outside the wheel's copy: {outside[:5]}"
    assert not any(str(REPO_ROOT / "birefnet_hf") in line for line in result.stderr.splitlines())

    folder = work / "out" / "pvt_v2_b0"
    names = {path.name for path in folder.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md", "modeling_birefnet.py",
            "image_processing_birefnet.py", "image_io.py"} <= names
    assert not [name for name in os.listdir(work / "out") if name.startswith(".")]  # no staging leftovers
