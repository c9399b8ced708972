# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Import cost of ``birefnet_hf``: process CPU time (user + system) of fresh ``python -c STATEMENT`` processes.

CPU time rather than wall time, because the machine is shared: other processes stretch the wall clock but barely
change the CPU seconds a process burns. Each statement runs ``--repeats`` times in a new interpreter (statements
interleaved repeat by repeat); the table gives the median and the range. Rows:

* ``python -c pass``: the interpreter alone (the floor);
* ``import transformers``: transformers' top level alone, for context;
* ``import birefnet_hf``: the number issue 17 asks to halve;
* ``import birefnet_hf; from transformers import AutoConfig``: the first Auto class a loading call touches;
* ``... AutoModelForImageSegmentation``, ``... pipeline``: what a user pays before the first ``from_pretrained``
  (the registration's full cost, wherever it happens);
* ``from birefnet_hf import BiRefNetForImageSegmentation``: the model class directly.

    python benchmarks/import_time.py --repeats 5
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]

STATEMENTS = (
    "pass",
    "import transformers",
    "import birefnet_hf",
    "import birefnet_hf; from transformers import AutoConfig",
    "import birefnet_hf; from transformers import AutoModelForImageSegmentation",
    "import birefnet_hf; from transformers import pipeline",
    "from birefnet_hf import BiRefNetForImageSegmentation",
)


def child_cpu_seconds() -> float:
    """User + system CPU seconds of all waited-for children of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_statement(statement: str, env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one fresh ``python -c statement``; raises if the statement fails."""
    cpu_before, wall_before = child_cpu_seconds(), time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", statement], cwd=REPOSITORY, env=env, capture_output=True, text=True
    )
    cpu, wall = child_cpu_seconds() - cpu_before, time.perf_counter() - wall_before
    if completed.returncode != 0:
        raise RuntimeError(f"`python -c {statement!r}` failed:\n{completed.stderr}")
    return cpu, wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--statements", nargs="+", default=list(STATEMENTS), help="the statements to time")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")

    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), env.get("PYTHONPATH", "")]))
    for statement in args.statements:  # warm the OS file cache and the bytecode caches once
        time_statement(statement, env)
    cpu: dict[str, list[float]] = {statement: [] for statement in args.statements}
    wall: dict[str, list[float]] = {statement: [] for statement in args.statements}
    for _ in range(args.repeats):
        for statement in args.statements:
            cpu_s, wall_s = time_statement(statement, env)
            cpu[statement].append(cpu_s)
            wall[statement].append(wall_s)

    print(
        f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.repeats} repeats"
    )
    print("| statement | CPU s median | CPU s min-max | wall s median |")
    print("|---|---|---|---|")
    for statement in args.statements:
        print(
            f"| `{statement}` | {statistics.median(cpu[statement]):.2f} | {min(cpu[statement]):.2f}-"
            f"{max(cpu[statement]):.2f} | {statistics.median(wall[statement]):.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
