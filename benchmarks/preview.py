"""Time the offline preview of each stack: median of several runs, wall clock, as a user
runs it (a fresh interpreter each time, so start-up is included).

    .venv/bin/python benchmarks/preview.py [--runs 5]

The figures go in README.md ("Offline preview speed"). This is a measurement, not a test:
nothing asserts on time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STACKS = ("tooling", "dev", "stage", "prod")


def time_once(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=ROOT, check=False, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    baseline = [time_once([sys.executable, "-c", "import pulumi_aws"]) for _ in range(runs)]
    print(f"interpreter + `import pulumi_aws` alone: median {statistics.median(baseline):.2f} s")
    for stack in STACKS:
        cmd = [sys.executable, "-m", "components.preview", "--stack", stack, "--quiet"]
        samples = [time_once(cmd) for _ in range(runs)]
        print(
            f"preview --stack {stack:8s} median {statistics.median(samples):.2f} s "
            f"(min {min(samples):.2f}, max {max(samples):.2f}, {runs} runs)"
        )


if __name__ == "__main__":
    main()
