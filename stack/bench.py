"""`cdr stack bench`: cold start time of the whole stack and each service's idle memory.

Cold means every service stopped with its data present and the OS caches warm: the stack is
brought up once (a no-op when running), stopped, then timed while it comes up again. Memory
is each service's resident set (process trees, so PostgreSQL's backends and PyFlink workers
count) after a settling pause. Results go to the "Local stack" section of docs/benchmarks.md.
"""

from __future__ import annotations

import os
import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path

from cdr.settings import REPO_ROOT
from stack.lifecycle import Progress, ServiceTiming, Stack
from stack.process import is_alive, tree_rss_bytes

BENCHMARKS_DOC = REPO_ROOT / "docs" / "benchmarks.md"
SECTION_TITLE = "## Local stack"
IDLE_SETTLE_S = 30
GOAL_S = 120
MIB = 1024 * 1024


@dataclass(frozen=True)
class BenchResult:
    total_s: float
    timings: list[ServiceTiming]
    rss_by_process: dict[str, tuple[str, int]]  # process -> (service, bytes)
    load_before: float  # 1-minute load average when the timed `up` began (other work skews the timing)

    def rss_by_service(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for service, rss in self.rss_by_process.values():
            totals[service] = totals.get(service, 0) + rss
        return totals


def run(stack: Stack, progress: Progress | None = None, settle_s: float = IDLE_SETTLE_S) -> BenchResult:
    stack.up(progress)  # data present, caches warm
    stack.down()
    load_before = os.getloadavg()[0]
    t0 = time.monotonic()
    timings = stack.up(progress)
    total = time.monotonic() - t0
    time.sleep(settle_s)
    rss = {
        record.name: (record.service, tree_rss_bytes(record.pid)) for record in stack.store.all() if is_alive(record)
    }
    return BenchResult(total, timings, rss, load_before)


def _machine() -> str:
    meminfo = Path("/proc/meminfo").read_text()
    total_kib = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))  # type: ignore[union-attr]
    return f"{os.cpu_count()} cores, {total_kib / MIB:.0f} GiB RAM, {platform.system()} {platform.release()}"


def markdown(result: BenchResult, settle_s: float = IDLE_SETTLE_S) -> str:
    by_service = result.rss_by_service()
    verdict = "meets" if result.total_s < GOAL_S else "misses"
    lines = [
        SECTION_TITLE,
        "",
        f"`make bench-stack` on {time.strftime('%Y-%m-%d')}, {_machine()}, load average "
        f"{result.load_before:.1f} when the timed start began. Cold `cdr stack up` "
        f"(every service stopped, data present, caches warm) until every readiness probe passed: "
        f"**{result.total_s:.1f} s** ({verdict} the {GOAL_S} s goal). Services start one after "
        f"another, so the total is the sum of the rows. Idle memory is the resident set of each "
        f"service's process trees {settle_s:.0f} s after all were ready.",
        "",
        "| Service | Ready after (s) | Idle RSS (MiB) | Processes |",
        "|---|---:|---:|---|",
    ]
    for timing in result.timings:
        processes = ", ".join(
            f"{name} {rss / MIB:.0f}"
            for name, (service, rss) in result.rss_by_process.items()
            if service == timing.service
        )
        lines.append(
            f"| {timing.service} | {timing.seconds:.1f} | {by_service.get(timing.service, 0) / MIB:.0f} | {processes} |"
        )
    total_rss = sum(by_service.values())
    lines += [f"| **total** | **{result.total_s:.1f}** | **{total_rss / MIB:.0f}** | |", ""]
    return "\n".join(lines) + "\n"


def write_section(section: str, doc: Path = BENCHMARKS_DOC) -> None:
    """Replace this benchmark's section of the shared benchmarks document, leaving the others."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^{re.escape(SECTION_TITLE)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
