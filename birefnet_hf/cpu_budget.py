# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""How many CPUs this process may really use, and a torch thread count that respects it.

PyTorch sizes its intra-op thread pool from the cores it can see. In a container limited by a CPU *quota*
(Docker/Kubernetes ``--cpus``, systemd ``CPUQuota``) it sees every core of the host, so it starts more threads than
the CPU time it gets; every parallel region then ends in a barrier that waits for a descheduled thread, and a run
slows down far more than the quota alone would cost (``benchmarks/contention.py`` measures the effect of competing
processes). The usable CPU count is the smallest of

* the CPUs in the process's affinity mask (``os.sched_getaffinity``: ``taskset``, cpusets), and
* the CPU quota of its cgroup and of every cgroup above it, rounded up: cgroup v2 ``cpu.max`` (``"$MAX $PERIOD"``
  or ``"max $PERIOD"``), cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota ``-1``: no limit).

The process's cgroups are read from ``/proc/self/cgroup`` and located through ``/proc/self/mountinfo`` (or the
usual ``/sys/fs/cgroup`` layout when that is unreadable); missing or unreadable files mean "no limit". Every path
is read under a ``root`` folder so that tests can pass a fake file tree.

:func:`apply_cpu_budget` lowers ``torch.set_num_threads`` to that count unless the user chose a thread count
(``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` set, or ``torch.set_num_threads`` called with a value that is not one of
torch's defaults for this machine), and logs its decision once (INFO, logger ``birefnet_hf.cpu_budget``). The
command line, the pipelines on a CPU device, the demo and the training script call it.

How the threads *wait* matters as much on a shared CPU. Between parallel regions the OpenMP runtime of PyTorch's
Linux wheels (libgomp) keeps its idle threads spinning for up to ~300,000 iterations (milliseconds) before they
sleep. On a quiet machine that saves a wake-up per region; when another process wants the core, the spinning threads
take their share of it from the thread that has the work, and a forward of thousands of regions slows down far more
than losing the core costs (``benchmarks/contention.py``: one competing busy process made a pvt_v2_b0 inference
2.4-2.6x and a training step 2.8-3.1x slower with spinning, 1.5x and 1.3x with passive waiting and the fused AdamW,
at the same quiet inference speed). :func:`configure_thread_waiting` therefore sets ``OMP_WAIT_POLICY=PASSIVE`` for the process, unless the user
set ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``. The runtime reads it once, when ``import torch`` loads it, so the
entry points call it before importing torch (the ``birefnet-hf`` command, ``examples/train.py``,
``examples/run_demo.py``); a library user sets the variable before starting Python, and :func:`apply_cpu_budget`
says so in its log line when torch was loaded first.
"""

from __future__ import annotations

import os
import posixpath
import re
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from transformers.utils import logging

logger = logging.get_logger(__name__)

__all__ = [
    "CPUQuota",
    "CPUBudget",
    "affinity_cpu_count",
    "cgroup_cpu_quota",
    "cpu_budget",
    "torch_default_thread_counts",
    "user_thread_setting",
    "apply_cpu_budget",
    "configure_thread_waiting",
    "thread_waiting",
]

#: Environment variables with which a user fixes the number of compute threads (read by torch at start-up).
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")

#: Environment variables that choose how idle OpenMP threads wait (read once, when torch loads the runtime).
WAIT_ENV_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")

#: The process's environment entry that records that :func:`configure_thread_waiting` (not the user) set the policy,
#: so that child processes and later log lines tell the two apart.
_SET_BY_PACKAGE = "BIREFNET_HF_SET_OMP_WAIT_POLICY"


def configure_thread_waiting(
    environ: MutableMapping[str, str] | None = None, modules: Mapping[str, object] | None = None
) -> str:
    """Let idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``), which keeps the speed of a
    run when other processes compete for the CPUs (see the module docstring), unless the user chose a wait policy.

    Call it before ``import torch``: the OpenMP runtime reads the policy when it is loaded. Returns what holds,
    as a phrase for the log: set here, chosen by the user, or too late (torch already imported, the runtime's
    default stays). ``environ``/``modules`` default to ``os.environ``/``sys.modules`` (tests pass their own)."""
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    if not any(environ.get(name, "").strip() for name in WAIT_ENV_VARS) and "torch" not in modules:
        environ["OMP_WAIT_POLICY"] = "PASSIVE"
        environ[_SET_BY_PACKAGE] = "1"
    return thread_waiting(environ, modules)


def thread_waiting(
    environ: Mapping[str, str] | None = None, modules: Mapping[str, object] | None = None
) -> str:
    """How idle OpenMP threads of this process wait, as a phrase for the log."""
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    chosen = ", ".join(f"{name}={environ[name]}" for name in WAIT_ENV_VARS if environ.get(name, "").strip())
    if environ.get(_SET_BY_PACKAGE) == "1" and environ.get("OMP_WAIT_POLICY") == "PASSIVE":
        return "idle threads sleep (OMP_WAIT_POLICY=PASSIVE, set by birefnet_hf)"
    if chosen:
        return f"idle threads wait as the user chose ({chosen})"
    if "torch" in modules:
        return (
            "idle threads spin (the OpenMP default; torch was imported before birefnet_hf could choose: on a "
            "shared CPU set OMP_WAIT_POLICY=PASSIVE before starting Python)"
        )
    return "idle threads will spin (the OpenMP default)"


@dataclass(frozen=True)
class CPUQuota:
    """A cgroup CPU bandwidth limit: ``quota`` microseconds of CPU time per ``period`` microseconds."""

    quota: int
    period: int
    source: str  # the file it was read from, for the log message

    @property
    def cpus(self) -> float:
        """The limit in CPUs (e.g. 1.5)."""
        return self.quota / self.period

    @property
    def whole_cpus(self) -> int:
        """The limit rounded up to whole CPUs, at least 1 (a 0.5-CPU container still runs one thread)."""
        return max(1, -(-self.quota // self.period))


@dataclass(frozen=True)
class CPUBudget:
    """What limits the CPUs of this process: ``visible`` CPUs (``os.cpu_count``), the ``affinity`` mask's size and
    the tightest cgroup ``quota`` (``None`` where there is none or it could not be read)."""

    visible: int
    affinity: int | None
    quota: CPUQuota | None

    @property
    def usable(self) -> int:
        """The number of CPUs this process can keep busy at once."""
        count = self.affinity if self.affinity is not None else self.visible
        if self.quota is not None:
            count = min(count, self.quota.whole_cpus)
        return max(1, count)

    def describe(self) -> str:
        """One line naming each limit, for the log."""
        parts = [f"{self.visible} visible"]
        if self.affinity is not None:
            parts.append(f"affinity mask {self.affinity}")
        if self.quota is not None:
            parts.append(
                f"cgroup quota {self.quota.cpus:g} ({self.quota.quota}/{self.quota.period} us in {self.quota.source})"
            )
        return f"{self.usable} usable CPU{'s' if self.usable != 1 else ''} ({', '.join(parts)})"


def _under(root: str | os.PathLike, path: str) -> Path:
    """``path`` (absolute, as the kernel names it) inside the file tree at ``root``."""
    return Path(root) / path.lstrip("/")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def affinity_cpu_count() -> int | None:
    """The number of CPUs in this process's affinity mask, or ``None`` where the OS has no affinity API."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is None:
        return None
    try:
        return len(getaffinity(0)) or None
    except OSError:
        return None


def _process_cgroups(root: str | os.PathLike) -> tuple[str | None, dict[str, str]]:
    """The cgroup v2 path and the cgroup v1 path of each controller of this process (``/proc/self/cgroup``)."""
    text = _read(_under(root, "/proc/self/cgroup"))
    unified, per_controller = None, {}
    for line in (text or "").splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        hierarchy, controllers, path = fields
        if hierarchy == "0" and not controllers:
            unified = path
        else:
            for controller in controllers.split(","):
                if controller:
                    per_controller[controller] = path
    return unified, per_controller


def _unescape_mount_field(field: str) -> str:
    """mountinfo writes spaces, tabs, newlines and backslashes in paths as octal escapes (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def _cgroup_mounts(root: str | os.PathLike) -> list[tuple[str, str, str, frozenset[str]]]:
    """``(fstype, mount root, mount point, super options)`` of every cgroup / cgroup2 mount in
    ``/proc/self/mountinfo``; without that file, the usual layout under ``/sys/fs/cgroup`` where it exists."""
    mounts = []
    text = _read(_under(root, "/proc/self/mountinfo"))
    for line in (text or "").splitlines():
        left, separator, right = line.partition(" - ")
        if not separator:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 1 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        options = frozenset(tail[2].split(",")) if len(tail) > 2 else frozenset()
        mounts.append((tail[0], _unescape_mount_field(fields[3]), _unescape_mount_field(fields[4]), options))
    if text is None:
        base = _under(root, "/sys/fs/cgroup")
        if (base / "cgroup.controllers").is_file():
            mounts.append(("cgroup2", "/", "/sys/fs/cgroup", frozenset()))
        for name in ("cpu,cpuacct", "cpuacct,cpu", "cpu"):
            if (base / name).is_dir():
                mounts.append(("cgroup", "/", f"/sys/fs/cgroup/{name}", frozenset(name.split(","))))
                break
    return mounts


def _cgroup_folders(
    root: str | os.PathLike, mount_root: str, mount_point: str, cgroup_path: str
) -> list[Path]:
    """The folder of ``cgroup_path`` on a mount and every folder above it up to the mount point (a limit on an
    ancestor applies too). A path outside the mount's root (a cgroup namespace, a container's bind mount) means the
    mount point itself is the process's cgroup."""
    mount_root = posixpath.normpath(mount_root)
    path = posixpath.normpath(cgroup_path or "/")
    if mount_root == "/":
        relative = path.lstrip("/")
    elif path == mount_root or path.startswith(mount_root + "/"):
        relative = path[len(mount_root) :].lstrip("/")
    else:
        relative = ""
    parts = [part for part in relative.split("/") if part and part != "."]
    if ".." in parts:  # e.g. "/../.." from a process outside its own cgroup namespace
        parts = []
    base = _under(root, mount_point)
    return [base.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


def _v2_quota(folder: Path) -> CPUQuota | None:
    text = _read(folder / "cpu.max")
    if text is None:
        return None
    fields = text.split()
    if len(fields) < 1 or fields[0] == "max":
        return None
    try:
        quota = int(fields[0])
        period = int(fields[1]) if len(fields) > 1 else 100_000
    except ValueError:
        return None
    if quota <= 0 or period <= 0:
        return None
    return CPUQuota(quota, period, str(folder / "cpu.max"))


def _v1_quota(folder: Path) -> CPUQuota | None:
    quota_text, period_text = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
    if quota_text is None or period_text is None:
        return None
    try:
        quota, period = int(quota_text.strip()), int(period_text.strip())
    except ValueError:
        return None
    if quota <= 0 or period <= 0:  # -1: no limit
        return None
    return CPUQuota(quota, period, str(folder / "cpu.cfs_quota_us"))


def cgroup_cpu_quota(root: str | os.PathLike = "/") -> CPUQuota | None:
    """The tightest CPU quota on this process's cgroup or any cgroup above it (v2 ``cpu.max``, v1
    ``cpu.cfs_quota_us``/``cpu.cfs_period_us``), or ``None`` if there is none. Files are read under ``root``;
    anything missing or malformed counts as no limit."""
    unified, per_controller = _process_cgroups(root)
    tightest: CPUQuota | None = None
    for fstype, mount_root, mount_point, options in _cgroup_mounts(root):
        if fstype == "cgroup2":
            if unified is None:
                continue
            path, read_quota = unified, _v2_quota
        else:
            if "cpu" not in options or "cpu" not in per_controller:
                continue
            path, read_quota = per_controller["cpu"], _v1_quota
        for folder in _cgroup_folders(root, mount_root, mount_point, path):
            quota = read_quota(folder)
            if quota is not None and (tightest is None or quota.cpus < tightest.cpus):
                tightest = quota
    return tightest


def cpu_budget(root: str | os.PathLike = "/") -> CPUBudget:
    """The CPU limits of this process (affinity mask and cgroup quota); ``.usable`` is the CPU count to use."""
    return CPUBudget(visible=os.cpu_count() or 1, affinity=affinity_cpu_count(), quota=cgroup_cpu_quota(root))


def _physical_cores(cpus: list[int], root: str | os.PathLike) -> int | None:
    """How many distinct physical cores (package, core id) the logical ``cpus`` are on; ``None`` if unknown."""
    cores = set()
    for cpu in cpus:
        topology = _under(root, f"/sys/devices/system/cpu/cpu{cpu}/topology")
        package, core = _read(topology / "physical_package_id"), _read(topology / "core_id")
        if package is None or core is None:
            return None
        cores.add((package.strip(), core.strip()))
    return len(cores) or None


def torch_default_thread_counts(root: str | os.PathLike = "/") -> set[int]:
    """The thread counts torch may have chosen by itself on this machine: the visible CPUs, the affinity mask's
    CPUs, and the physical cores of either (torch counts physical cores where it can). Any other count was set by
    the user."""
    visible = os.cpu_count() or 1
    counts = {visible}
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity API on this OS
        allowed = list(range(visible))
    counts.add(len(allowed) or visible)
    for cpus in (list(range(visible)), allowed):
        physical = _physical_cores(cpus, root)
        if physical is not None:
            counts.add(physical)
    return counts


def user_thread_setting(root: str | os.PathLike = "/") -> str | None:
    """What the user did to choose torch's thread count, or ``None`` if it is torch's own default: an environment
    variable (``OMP_NUM_THREADS=4``) or a ``torch.set_num_threads`` call with a count torch would not pick."""
    import torch

    for name in THREAD_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            return f"{name}={value}"
    current = torch.get_num_threads()
    if current not in torch_default_thread_counts(root):
        return f"torch.set_num_threads({current})"
    return None


def apply_cpu_budget(root: str | os.PathLike = "/") -> int:
    """Lower torch's intra-op thread count to the CPUs this process may use (:func:`cpu_budget`), unless the user
    chose a thread count (:func:`user_thread_setting`). Never raises the count. Returns the thread count now in
    effect. The outcome is logged (INFO) once per process: calling it again (the CLI, then a pipeline) finds the
    count already in effect and repeats the same message, which is not logged twice."""
    import torch

    budget = cpu_budget(root)
    current = torch.get_num_threads()
    if current > budget.usable:
        chosen_by = user_thread_setting(root)
        if chosen_by is not None:
            logger.info_once(
                f"CPU budget: {budget.describe()}; keeping {current} torch threads, set by the user ({chosen_by}); "
                f"{thread_waiting()}."
            )
            return current
        torch.set_num_threads(budget.usable)
        current = budget.usable
    logger.info_once(
        f"CPU budget: {budget.describe()}; torch uses {current} thread{'s' if current != 1 else ''}; "
        f"{thread_waiting()}."
    )
    return current
