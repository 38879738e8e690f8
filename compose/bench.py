#!/usr/bin/env python3
"""`make bench-compose`: the container stack's goals, measured side by side in one run.

    1. cold build: every image on an empty engine, base image included (the stack is stopped, the
       image, the base image and the build cache removed first; volumes are kept);
    2. rebuild after a change to the project's Python code only (a new module in cdr/, removed after);
    3. `make up` from stopped containers to every service healthy, images built;
    4. memory: the running stack idle (`docker stats`), and the sum of the compose memory limits.

It takes 20-40 minutes on 2 cores and leaves the stack running. BENCH_COLD=0 skips step 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compose  # noqa: E402  (compose/compose.py, a script folder without a package)

GIB = 1024**3


def _timed(label: str, argv: list[str]) -> float:
    print(f"--- {label}: {' '.join(argv)}", flush=True)
    started = time.monotonic()
    subprocess.run(argv, check=True, cwd=compose.REPO)
    elapsed = time.monotonic() - started
    print(f"--- {label}: {elapsed:.0f} s", flush=True)
    return elapsed


def _bytes(text: str) -> float:
    units = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": GIB, "kB": 1e3, "MB": 1e6, "GB": 1e9}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    return float(text)


def memory_in_use() -> float:
    out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{json .}}"], capture_output=True,
                         text=True, check=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return sum(_bytes(r["MemUsage"].split("/")[0].strip()) for r in rows if r["Name"].startswith("cdr-")) / GIB


def memory_limits(env: dict[str, str]) -> float:
    def gib(limit: str) -> float:
        return int(limit[:-1]) / (1024 if limit.endswith("m") else 1)

    services = compose.render(env, compose.PROFILES)["services"]
    return sum(gib(s["mem_limit"]) for s in services.values() if not compose.is_one_shot(s))


def main() -> int:
    engine = compose.find_engine()[1]
    env = compose.project_env()
    image = env.get("PLATFORM_IMAGE") or compose.DEFAULT_PLATFORM_IMAGE
    base = env.get("BASE_IMAGE") or compose.DEFAULT_BASE_IMAGE
    python = sys.executable
    results = {}
    if os.environ.get("BENCH_COLD", "1") != "0":
        subprocess.run([python, "compose/compose.py", "down"], check=True, cwd=compose.REPO)
        subprocess.run([engine, "image", "rm", "-f", image, base], cwd=compose.REPO, capture_output=True)
        subprocess.run([engine, "builder", "prune", "-af"], check=True, cwd=compose.REPO, capture_output=True)
        results["cold build, base image included"] = _timed("cold build", [python, "compose/compose.py", "images"])
    marker = compose.REPO / "cdr" / "_bench_code_change.py"
    marker.write_text(f'"""Written by compose/bench.py at {time.time()}; removed after the build."""\n')
    try:
        results["rebuild after a Python code change"] = _timed("code-change rebuild",
                                                                [python, "compose/compose.py", "images"])
    finally:
        marker.unlink()
    subprocess.run([python, "compose/compose.py", "images"], check=True, cwd=compose.REPO)   # back to the tree's code
    subprocess.run([python, "compose/compose.py", "down"], check=True, cwd=compose.REPO)
    results["make up to every service healthy (images built)"] = _timed(
        "up", [python, "compose/compose.py", "up", "--no-build"])
    time.sleep(120)   # idle: the start's JIT and caches settle
    goals = {"cold build, base image included": 20 * 60, "rebuild after a Python code change": 120,
             "make up to every service healthy (images built)": 180}
    print("\ncontainer stack                                   measured     goal")
    for label, seconds in results.items():
        print(f"  {label:<48} {seconds:>6.0f} s  {goals[label]:>5} s  ({seconds / goals[label]:.2f} x the goal)")
    print(f"  {'memory in use, idle (docker stats)':<48} {memory_in_use():>6.2f} GiB  10 GiB")
    print(f"  {'memory limits of the long-running services':<48} {memory_limits(env):>6.2f} GiB  16 GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
