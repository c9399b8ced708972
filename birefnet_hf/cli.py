# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""The ``birefnet-hf`` command line: one entry point, one sub-command per job.

Each sub-command lives in its own module, which exposes ``main(argv)`` with its own argparse parser,
so ``birefnet-hf convert ...`` is the same as ``python -m birefnet_hf.convert_birefnet_original_to_hf ...``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

SUBCOMMANDS = {
    "convert": ("birefnet_hf.convert_birefnet_original_to_hf", "convert an authors' checkpoint to a save_pretrained folder"),
    "segment": ("birefnet_hf.segment", "segment images / remove backgrounds (files, folders, globs)"),
    "synthetic": ("birefnet_hf.data.synthetic", "write a synthetic DIS5K-layout dataset"),
    "publish": ("birefnet_hf.publish", "build model folders + model cards and push them to the Hub"),
    "export": ("birefnet_hf.onnx_export", "export to ONNX (standard operators, checked against PyTorch)"),
    "segment-dataset": ("birefnet_hf.bulk", "segment the images of a datasets dataset (shards under accelerate launch)"),
    "serve": ("birefnet_hf.server.serve", "serve background removal over HTTP (API + web page)"),
    "video": ("birefnet_hf.video", "remove the background of a video (alpha WebM/ProRes, matte, composite, PNGs)"),
}


def _usage() -> str:
    lines = ["usage: birefnet-hf <command> [options]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    lines += ["", "Run `birefnet-hf <command> --help` for the options of a command."]
    return "\n".join(lines)


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process gets SIGTERM inside [`sigterm_as_interrupt`]."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Handle SIGTERM like SIGINT (Ctrl-C) while the block runs: it raises [`Terminated`], a `KeyboardInterrupt`,
    so the clean-up of atomic writes (temporary files and staging folders removed) runs instead of the process
    dying with them on disk. Outside the main thread (where signals cannot be handled) this does nothing."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise Terminated(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def interrupted_exit_code(error: KeyboardInterrupt) -> int:
    """The shell's exit code for a command stopped by a signal: 128 + 15 for SIGTERM, 128 + 2 for SIGINT."""
    return 128 + (15 if isinstance(error, Terminated) else 2)


def current_umask() -> int:
    """The process's file-mode creation mask, read without changing it where the OS allows (Linux)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: the classic set-and-restore
    os.umask(mask)
    return mask


def apply_umask(root: str | os.PathLike) -> None:
    """Give `root` and everything under it the permissions a plain `mkdir` / `open` would have given: 0o777 for
    folders, 0o666 for files (0o777 for executables), minus the umask. For folders made with `tempfile.mkdtemp`
    (always 0o700) and files some writers create 0o600 (safetensors), before they are renamed into place."""
    mask = current_umask()
    for folder, _, files in os.walk(root):
        os.chmod(folder, 0o777 & ~mask)
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            executable = os.stat(path).st_mode & 0o111
            os.chmod(path, (0o777 if executable else 0o666) & ~mask)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in SUBCOMMANDS:
        print(f"birefnet-hf: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    from .cpu_budget import apply_cpu_budget, configure_thread_waiting

    configure_thread_waiting()  # before torch is imported: idle OpenMP threads sleep instead of spinning
    apply_cpu_budget()  # torch threads for the CPUs this process may use (affinity mask, cgroup quota)
    module = importlib.import_module(SUBCOMMANDS[command][0])
    try:
        with sigterm_as_interrupt():
            result = module.main(rest)
    except KeyboardInterrupt as error:
        signal_name = "SIGTERM" if isinstance(error, Terminated) else "SIGINT"
        print(f"birefnet-hf {command}: interrupted ({signal_name})", file=sys.stderr)
        return interrupted_exit_code(error)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
