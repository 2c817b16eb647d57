"""Time the offline preview of each stack: median of several runs, wall clock, as a user
runs it (a fresh interpreter each time, so start-up is included).

    .venv/bin/python benchmarks/preview.py [--runs 5]

An environment stack's preview also needs the tooling stack's exports (its StackReference);
they are cached on disk between runs (``.offline-cache/``, keyed by content), so each
environment stack is timed with the cache and without it. The figures go in README.md
("Offline preview speed"). This is a measurement, not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NO_DISK_CACHE_ENV = "DOTNET_DELIVERY_NO_DISK_CACHE"  # components.testing.engine
STACKS = ("tooling", "dev", "stage", "prod")


def time_once(args: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(
        args, cwd=ROOT, check=False, capture_output=True, env={**os.environ, **(env or {})}
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    baseline = [time_once([sys.executable, "-c", "import pulumi_aws"]) for _ in range(runs)]
    print(f"interpreter + `import pulumi_aws` alone: median {statistics.median(baseline):.2f} s")
    for stack in STACKS:
        cmd = [sys.executable, "-m", "components.preview", "--stack", stack, "--quiet"]
        for label, env in (("", {}), (" (no disk cache)", {NO_DISK_CACHE_ENV: "1"})):
            if stack == "tooling" and env:
                continue  # the tooling stack references no other stack
            samples = [time_once(cmd, env) for _ in range(runs)]
            print(
                f"preview --stack {stack:8s} median {statistics.median(samples):.2f} s "
                f"(min {min(samples):.2f}, max {max(samples):.2f}, {runs} runs){label}"
            )


if __name__ == "__main__":
    main()
