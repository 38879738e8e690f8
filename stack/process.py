"""Launch, identify and stop the stack's processes; check ports; measure memory.

Every process is started detached (its own session, stdin closed, output to a log file) so
that the command that started it, or a pytest session, can exit without waiting for it.
A pid is only trusted together with the boot id and the process start time recorded when
we launched it, plus a marker in its command line: a recycled pid is never mistaken for
one of ours, and never signalled.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# Children started by this Python process, kept so that their exit can be collected (poll)
# instead of leaving zombies in a long-lived caller such as a pytest session.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one process of a service."""

    name: str  # unique in the stack, e.g. "kafka-2"; names the log and the pid record
    argv: list[str]
    ports: list[int]
    env: dict[str, str] = field(default_factory=dict)  # added to the inherited environment
    cwd: Path | None = None
    # PostgreSQL treats SIGTERM as "wait for clients to leave"; it gets SIGINT (fast shutdown).
    stop_signal: int = signal.SIGTERM
    # A string that stays in /proc/<pid>/cmdline after any exec chain (a path under the stack home).
    marker: str = ""


@dataclass(frozen=True)
class ProcessRecord:
    """What we remember about a process we started (the pid file's content)."""

    service: str
    name: str
    pid: int
    start_ticks: int
    boot_id: str
    marker: str
    log: str
    ports: list[int]
    stop_signal: int


def _boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name, or None if the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw[raw.rindex(")") + 2 :].split()


def _start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None  # field 22 of stat(5)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


class PidStore:
    """Pid records of the stack, one JSON file per process in ``run_dir``."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def _path(self, name: str) -> Path:
        return self.run_dir / f"{name}.json"

    def get(self, name: str) -> ProcessRecord | None:
        try:
            return ProcessRecord(**json.loads(self._path(name).read_text()))
        except FileNotFoundError:
            return None

    def put(self, record: ProcessRecord) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._path(record.name).with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(record)))
        tmp.replace(self._path(record.name))

    def remove(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def all(self) -> list[ProcessRecord]:
        return [record for path in sorted(self.run_dir.glob("*.json")) if (record := self.get(path.stem))]


def is_alive(record: ProcessRecord) -> bool:
    """True only if the recorded pid is still the very process we started and not a zombie."""
    if record.boot_id != _boot_id():
        return False
    if record.pid in _children:
        _children[record.pid].poll()  # collects our own child's exit so it does not stay a zombie
    fields = _stat_fields(record.pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    if int(fields[19]) != record.start_ticks:
        return False
    # The command line reads empty while the process is between fork and exec (or exec chains).
    command = cmdline(record.pid)
    return not command or record.marker in command


def launch(service: str, spec: ProcessSpec, log_path: Path) -> ProcessRecord:
    """Start ``spec`` detached, appending its output to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **spec.env}
    with log_path.open("ab") as log:
        log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {spec.name}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            spec.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=spec.cwd,
            env=env,
            start_new_session=True,  # own session and process group: survives our exit, stops as a group
            close_fds=True,
        )
    _children[proc.pid] = proc
    ticks = _start_ticks(proc.pid)
    return ProcessRecord(
        service, spec.name, proc.pid, ticks or -1, _boot_id(), spec.marker, str(log_path), spec.ports,
        int(spec.stop_signal),
    )  # fmt: skip


def signal_group(record: ProcessRecord, sig: int) -> None:
    """Signal the process group we created for the record (the process and its children)."""
    try:
        os.killpg(record.pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(record.pid, sig)


def wait_dead(records: list[ProcessRecord], timeout_s: float) -> list[ProcessRecord]:
    """Wait until every record's process is gone; return those still alive at the deadline."""
    deadline = time.monotonic() + timeout_s
    alive = [r for r in records if is_alive(r)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [r for r in alive if is_alive(r)]
    return alive


def exit_code(record: ProcessRecord) -> int | None:
    """Exit status of a process this Python process started, once it has ended."""
    child = _children.get(record.pid)
    return child.poll() if child else None


# --- ports -------------------------------------------------------------------------------------


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could bind ``host:port`` now (SO_REUSEADDR like the servers themselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                inodes.add(inode)
    return inodes


def port_owner(port: int) -> str | None:
    """'pid 123 (java ...)' of the process listening on ``port``, when /proc lets us see it."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    return f"pid {proc.name} ({cmdline(int(proc.name))[:120]})"
        except OSError:
            continue
    return "a process this user cannot inspect"


# --- memory ------------------------------------------------------------------------------------


def tree_rss_bytes(root_pid: int) -> int:
    """Resident memory of a process and all its descendants (e.g. PostgreSQL's backends)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        pid = int(proc.name)
        fields = _stat_fields(pid)
        if fields is None:
            continue
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * _PAGE_SIZE  # field 24 of stat(5): rss in pages
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


def tail(path: Path, lines: int) -> str:
    """Last ``lines`` lines of a log file ('' if it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 256 * 1024))
            data = fh.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(data.splitlines()[-lines:])
