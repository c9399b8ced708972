# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""birefnet_hf.cpu_budget: the CPUs a process may use (affinity mask, cgroup v1/v2 quota) and the torch thread count
derived from it, on fake /proc and /sys trees; the CLI under `taskset` in a subprocess."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from birefnet_hf import cpu_budget

REPO_ROOT = Path(__file__).resolve().parents[1]


def _write(root: Path, path: str, text: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def _mountinfo(*mounts: tuple[str, str, str, str]) -> str:
    """mountinfo lines for (fstype, mount root, mount point, super options)."""
    lines = ["22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda1 rw"]
    for index, (fstype, root, point, options) in enumerate(mounts):
        lines.append(
            f"{30 + index} 22 0:{40 + index} {root} {point} rw,nosuid shared:9 - {fstype} {fstype} {options}"
        )
    return "\n".join(lines) + "\n"


@pytest.fixture
def torch_threads():
    """Restore torch's thread count after the test."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def machine(monkeypatch):
    """A 4-CPU machine with all CPUs in the affinity mask and no thread environment variables."""
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    for name in cpu_budget.THREAD_ENV_VARS:
        monkeypatch.delenv(name, raising=False)


# ------------------------------------------------------------------------------------------------ cgroup v2


def test_cgroup_v2_quota_is_the_tightest_along_the_path(tmp_path):
    _write(tmp_path, "/proc/self/cgroup", "0::/kubepods/pod1/container\n")
    _write(tmp_path, "/proc/self/mountinfo", _mountinfo(("cgroup2", "/", "/sys/fs/cgroup", "rw,nsdelegate")))
    _write(tmp_path, "/sys/fs/cgroup/kubepods/cpu.max", "400000 100000\n")
    _write(tmp_path, "/sys/fs/cgroup/kubepods/pod1/cpu.max", "150000 100000\n")  # the pod's limit: 1.5 CPUs
    _write(tmp_path, "/sys/fs/cgroup/kubepods/pod1/container/cpu.max", "max 100000\n")

    quota = cpu_budget.cgroup_cpu_quota(tmp_path)
    assert (quota.quota, quota.period) == (150_000, 100_000)
    assert quota.cpus == 1.5 and quota.whole_cpus == 2
    assert quota.source.endswith(os.path.join("kubepods", "pod1", "cpu.max"))


def test_cgroup_v2_in_a_namespace_reads_the_mount_point(tmp_path):
    # a container with its own cgroup namespace: "0::/" and the container's cgroup mounted at /sys/fs/cgroup
    _write(tmp_path, "/proc/self/cgroup", "0::/\n")
    _write(tmp_path, "/proc/self/mountinfo", _mountinfo(("cgroup2", "/", "/sys/fs/cgroup", "rw")))
    _write(tmp_path, "/sys/fs/cgroup/cpu.max", "50000 100000\n")
    quota = cpu_budget.cgroup_cpu_quota(tmp_path)
    assert quota.cpus == 0.5 and quota.whole_cpus == 1


def test_cgroup_v2_without_mountinfo_uses_the_usual_layout(tmp_path):
    _write(tmp_path, "/proc/self/cgroup", "0::/app\n")
    _write(tmp_path, "/sys/fs/cgroup/cgroup.controllers", "cpu memory\n")
    _write(tmp_path, "/sys/fs/cgroup/app/cpu.max", "250000 100000\n")
    assert cpu_budget.cgroup_cpu_quota(tmp_path).whole_cpus == 3


def test_cgroup_v2_without_a_limit(tmp_path):
    _write(tmp_path, "/proc/self/cgroup", "0::/app\n")
    _write(tmp_path, "/proc/self/mountinfo", _mountinfo(("cgroup2", "/", "/sys/fs/cgroup", "rw")))
    _write(tmp_path, "/sys/fs/cgroup/app/cpu.max", "max 100000\n")
    assert cpu_budget.cgroup_cpu_quota(tmp_path) is None


# ------------------------------------------------------------------------------------------------ cgroup v1


def test_cgroup_v1_quota_and_period(tmp_path):
    _write(tmp_path, "/proc/self/cgroup", "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n")
    _write(
        tmp_path,
        "/proc/self/mountinfo",
        _mountinfo(
            ("cgroup", "/", "/sys/fs/cgroup/memory", "rw,memory"),
            ("cgroup", "/", "/sys/fs/cgroup/cpu,cpuacct", "rw,cpu,cpuacct"),
        ),
    )
    _write(tmp_path, "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "50000\n")
    _write(tmp_path, "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n")
    _write(tmp_path, "/sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_quota_us", "-1\n")  # no limit above
    _write(tmp_path, "/sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_period_us", "100000\n")
    # a memory limit file must not be mistaken for a CPU one
    _write(tmp_path, "/sys/fs/cgroup/memory/docker/abc/cpu.cfs_quota_us", "10000\n")
    _write(tmp_path, "/sys/fs/cgroup/memory/docker/abc/cpu.cfs_period_us", "100000\n")

    quota = cpu_budget.cgroup_cpu_quota(tmp_path)
    assert (quota.quota, quota.period, quota.whole_cpus) == (50_000, 100_000, 1)
    assert "cpu,cpuacct" in quota.source


def test_cgroup_v1_container_bind_mount(tmp_path):
    # inside a container the host's cgroup folder is mounted as the controller's mount point
    _write(tmp_path, "/proc/self/cgroup", "3:cpu:/docker/abc\n")
    _write(
        tmp_path,
        "/proc/self/mountinfo",
        _mountinfo(("cgroup", "/docker/abc", "/sys/fs/cgroup/cpu", "rw,cpu")),
    )
    _write(tmp_path, "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "300000\n")
    _write(tmp_path, "/sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n")
    assert cpu_budget.cgroup_cpu_quota(tmp_path).whole_cpus == 3


def test_cgroup_v1_unlimited_and_without_mountinfo(tmp_path):
    _write(tmp_path, "/proc/self/cgroup", "2:cpu,cpuacct:/\n")
    _write(tmp_path, "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n")
    _write(tmp_path, "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n")
    assert cpu_budget.cgroup_cpu_quota(tmp_path) is None
    _write(tmp_path, "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "200000\n")
    assert cpu_budget.cgroup_cpu_quota(tmp_path).whole_cpus == 2


@pytest.mark.parametrize(
    "files",
    [
        {},  # no /proc at all (not Linux, or a sandbox)
        {"/proc/self/cgroup": "0::/app\n"},  # no mounts, no /sys
        {
            "/proc/self/cgroup": "0::/app\n",
            "/sys/fs/cgroup/cgroup.controllers": "",
            "/sys/fs/cgroup/app/cpu.max": "x",
        },
        {
            "/proc/self/cgroup": "garbage\n",
            "/sys/fs/cgroup/cgroup.controllers": "",
            "/sys/fs/cgroup/cpu.max": "1 0",
        },
        {"/proc/self/cgroup": "3:cpu:/\n", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "50000"},  # period missing
    ],
)
def test_missing_or_malformed_files_mean_no_limit(tmp_path, files):
    for path, text in files.items():
        _write(tmp_path, path, text)
    assert cpu_budget.cgroup_cpu_quota(tmp_path) is None


# --------------------------------------------------------------------------------------- affinity and budget


def test_usable_cpus_are_the_smaller_of_affinity_and_quota(tmp_path, machine, monkeypatch):
    budget = cpu_budget.cpu_budget(tmp_path)  # no cgroup files
    assert (budget.visible, budget.affinity, budget.quota, budget.usable) == (4, 4, None, 4)

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {2}, raising=False)  # taskset -c 2
    assert cpu_budget.affinity_cpu_count() == 1
    assert cpu_budget.cpu_budget(tmp_path).usable == 1

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    _write(tmp_path, "/proc/self/cgroup", "0::/\n")
    _write(tmp_path, "/sys/fs/cgroup/cgroup.controllers", "cpu\n")
    _write(tmp_path, "/sys/fs/cgroup/cpu.max", "150000 100000\n")
    budget = cpu_budget.cpu_budget(tmp_path)
    assert (budget.affinity, budget.usable) == (3, 2)
    assert "2 usable CPUs" in budget.describe() and "cgroup quota 1.5" in budget.describe()


def test_without_an_affinity_api_the_visible_cpus_count(tmp_path, machine, monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert cpu_budget.affinity_cpu_count() is None
    assert cpu_budget.cpu_budget(tmp_path).usable == 4


# --------------------------------------------------------------------------------------------- applying it


def _quota_root(root: Path, cpus: float) -> Path:
    _write(root, "/proc/self/cgroup", "0::/\n")
    _write(root, "/sys/fs/cgroup/cgroup.controllers", "cpu\n")
    _write(root, "/sys/fs/cgroup/cpu.max", f"{int(cpus * 100_000)} 100000\n")
    return root


def test_apply_lowers_torch_default_to_the_quota(tmp_path, machine, torch_threads):
    torch.set_num_threads(4)  # what torch picks by itself on this (fake) 4-CPU machine
    assert cpu_budget.user_thread_setting(tmp_path) is None
    assert cpu_budget.apply_cpu_budget(_quota_root(tmp_path, 1)) == 1
    assert torch.get_num_threads() == 1


def test_apply_never_raises_the_thread_count(tmp_path, machine, torch_threads):
    torch.set_num_threads(1)
    assert cpu_budget.apply_cpu_budget(_quota_root(tmp_path, 2)) == 1
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("name", cpu_budget.THREAD_ENV_VARS)
def test_apply_respects_thread_environment_variables(
    tmp_path, machine, torch_threads, monkeypatch, caplog, name
):
    monkeypatch.setenv(name, "4")
    torch.set_num_threads(4)
    assert cpu_budget.user_thread_setting(tmp_path) == f"{name}=4"
    with caplog.at_level(logging.INFO, logger="birefnet_hf.cpu_budget"):
        assert cpu_budget.apply_cpu_budget(_quota_root(tmp_path, 1)) == 4
    assert torch.get_num_threads() == 4
    assert f"set by the user ({name}=4)" in caplog.text


def test_apply_respects_torch_set_num_threads(tmp_path, machine, torch_threads):
    torch.set_num_threads(3)  # not a count torch would pick on a 4-CPU machine
    assert cpu_budget.user_thread_setting(tmp_path) == "torch.set_num_threads(3)"
    assert cpu_budget.apply_cpu_budget(_quota_root(tmp_path, 1)) == 3
    assert torch.get_num_threads() == 3


def test_physical_cores_count_as_a_torch_default(tmp_path, machine, torch_threads):
    # 4 logical CPUs on 2 hyper-threaded cores: torch picks 2 by itself
    for cpu in range(4):
        _write(tmp_path, f"/sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id", "0\n")
        _write(tmp_path, f"/sys/devices/system/cpu/cpu{cpu}/topology/core_id", f"{cpu // 2}\n")
    assert cpu_budget.torch_default_thread_counts(tmp_path) == {4, 2}
    torch.set_num_threads(2)
    assert cpu_budget.user_thread_setting(tmp_path) is None
    assert cpu_budget.apply_cpu_budget(_quota_root(tmp_path, 1)) == 1


def test_the_decision_is_logged_once(tmp_path, machine, torch_threads, caplog):
    root = _quota_root(tmp_path, 1)
    torch.set_num_threads(4)
    with caplog.at_level(logging.INFO, logger="birefnet_hf.cpu_budget"):
        for _ in range(3):  # e.g. the CLI, then two pipelines
            assert cpu_budget.apply_cpu_budget(root) == 1
    messages = [record.getMessage() for record in caplog.records if record.name == "birefnet_hf.cpu_budget"]
    assert len(messages) == 1, messages
    assert "1 usable CPU" in messages[0] and str(root) in messages[0] and "torch uses 1 thread" in messages[0]


def test_pipeline_on_cpu_applies_the_budget(tiny_model_dir, machine, torch_threads, monkeypatch):
    from birefnet_hf import BackgroundRemovalPipeline, BiRefNetForImageSegmentation, BiRefNetImageProcessor

    model = BiRefNetForImageSegmentation.from_pretrained(tiny_model_dir).eval()
    torch.set_num_threads(4)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)  # as under `taskset -c 0`
    BackgroundRemovalPipeline(
        model=model, image_processor=BiRefNetImageProcessor(size={"height": 64, "width": 64})
    )
    assert torch.get_num_threads() == 1


# ------------------------------------------------------------------------------------------ the CLI, for real

_CLI_PROBE = textwrap.dedent(
    """
    import logging, os, sys
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    import torch
    from birefnet_hf import cli
    print("before", torch.get_num_threads(), flush=True)
    {setup}
    try:
        cli.main(["synthetic", "--help"])
    except SystemExit:
        pass
    print("after", torch.get_num_threads(), flush=True)
    """
)


def _run_probe(command: list[str]) -> dict[str, int]:
    env = {key: value for key, value in os.environ.items() if key not in cpu_budget.THREAD_ENV_VARS}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    counts = {}
    for line in done.stdout.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] in ("before", "after"):
            counts[fields[0]] = int(fields[1])
    assert "birefnet_hf.cpu_budget: CPU budget: 1 usable CPU" in done.stderr, done.stderr
    return counts


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) is not installed")
def test_cli_under_taskset_uses_one_thread():
    counts = _run_probe(["taskset", "-c", "0", sys.executable, "-c", _CLI_PROBE.format(setup="")])
    assert counts["after"] == 1


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs the affinity API and at least 2 CPUs in this process's affinity mask",
)
def test_cli_lowers_torch_default_after_the_affinity_shrinks():
    # torch has already sized its pool for every CPU; the mask then shrinks to one CPU (as a container runtime or
    # `taskset -p` may do): the CLI must notice
    setup = "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})"
    counts = _run_probe([sys.executable, "-c", _CLI_PROBE.format(setup=setup)])
    assert counts["before"] >= 2 and counts["after"] == 1


# ---- how idle OpenMP threads wait (issue 19)


def test_configure_thread_waiting_sets_passive_before_torch_is_loaded():
    environ: dict[str, str] = {}
    said = cpu_budget.configure_thread_waiting(environ, modules={})
    assert environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert "sleep" in said and "set by birefnet_hf" in said
    # a second call (the CLI, then a pipeline) or a child process that inherits the environment: the same answer
    assert cpu_budget.configure_thread_waiting(environ, modules={}) == said
    assert environ["OMP_WAIT_POLICY"] == "PASSIVE"


@pytest.mark.parametrize("name,value", [("OMP_WAIT_POLICY", "ACTIVE"), ("GOMP_SPINCOUNT", "10000")])
def test_configure_thread_waiting_keeps_the_users_choice(name, value):
    environ = {name: value}
    said = cpu_budget.configure_thread_waiting(environ, modules={})
    assert environ == {name: value}
    assert f"{name}={value}" in said and "user" in said


def test_configure_thread_waiting_after_torch_changes_nothing_and_says_so():
    environ: dict[str, str] = {}
    said = cpu_budget.configure_thread_waiting(environ, modules={"torch": torch})
    assert environ == {}
    assert "spin" in said and "OMP_WAIT_POLICY=PASSIVE" in said  # the hint for library users


_ENTRY_PROBE = textwrap.dedent(
    """
    import os, runpy, sys
    sys.argv = [{script!r}, "--help"]
    try:
        {call}
    except SystemExit:
        pass
    print("policy", os.environ.get("OMP_WAIT_POLICY"), flush=True)
    """
)


@pytest.mark.parametrize(
    "script,call",
    [
        ("birefnet-hf", "from birefnet_hf import cli; cli.main(['synthetic', '--help'])"),
        ("examples/train.py", "runpy.run_path('examples/train.py', run_name='__main__')"),
        ("examples/run_demo.py", "runpy.run_path('examples/run_demo.py', run_name='__main__')"),
    ],
)
def test_entry_points_make_idle_threads_sleep_before_importing_torch(script, call):
    """The command line, the training script and the demo set OMP_WAIT_POLICY=PASSIVE in a fresh process (before
    torch loads the OpenMP runtime, which reads it once); a user's own setting is kept."""
    env = {key: value for key, value in os.environ.items() if key not in cpu_budget.WAIT_ENV_VARS}
    env.pop("BIREFNET_HF_SET_OMP_WAIT_POLICY", None)
    probe = _ENTRY_PROBE.format(script=script, call=call)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=REPO_ROOT,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "policy PASSIVE" in done.stdout, done.stdout + done.stderr
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT,
                          env={**env, "OMP_WAIT_POLICY": "ACTIVE"}, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "policy ACTIVE" in done.stdout, done.stdout + done.stderr


def test_optimizer_kernel_options_fuse_adamw_on_cpu_with_the_same_update():
    from birefnet_hf.inference_paths import optimizer_kernel_options

    assert optimizer_kernel_options("cpu") == {"fused": True}
    assert optimizer_kernel_options(torch.device("cuda", 0)) == {}
    torch.manual_seed(0)
    weights = [torch.randn(300, 70), torch.randn(70)]
    grads = [[torch.randn_like(w) for w in weights] for _ in range(3)]
    results = []
    for options in ({}, optimizer_kernel_options("cpu")):
        params = [torch.nn.Parameter(w.clone()) for w in weights]
        optimizer = torch.optim.AdamW(params, lr=1e-2, weight_decay=1e-2, **options)
        for step_grads in grads:
            for p, g in zip(params, step_grads):
                p.grad = g.clone()
            optimizer.step()
        results.append(([p.detach() for p in params], optimizer.state_dict()["state"][0].keys()))
    (plain, plain_keys), (fused, fused_keys) = results
    assert plain_keys == fused_keys  # the same checkpoint layout: resuming works across the two
    for a, b in zip(plain, fused):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.equal(plain[0], weights[0])  # the steps did update
