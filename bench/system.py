"""Host plumbing: tools, bounded subprocesses, /proc readings, disk space.

Every command gets a timeout so a stuck server or client cannot hang the
run. CPU time and memory come from /proc, which sees a server and every
worker it forks without the server's help, for blobsvc and nginx alike.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

#: Command -> the Debian package that provides it.
TOOLS = {"nginx": "nginx", "curl": "curl", "wrk": "wrk"}

CLK_TCK = os.sysconf("SC_CLK_TCK")
MiB = 1024 * 1024
GiB = 1024 * MiB


class BenchError(Exception):
    """Something the harness could not do; the message says what."""


def check_tools() -> list[str]:
    """Problems with the external tools, each with the fix (empty: all good)."""
    missing = [name for name in TOOLS if shutil.which(name) is None]
    problems = []
    if missing:
        packages = " ".join(sorted({TOOLS[name] for name in missing}))
        problems.append(f"missing {', '.join(missing)}; install with: "
                        f"sudo apt-get update && sudo apt-get install -y {packages}")
    if "nginx" not in missing:
        built = run(["nginx", "-V"], timeout=10, check=False)
        if "--with-http_dav_module" not in built.stdout + built.stderr:
            problems.append("this nginx lacks the WebDAV module (PUT/DELETE); "
                            "install Debian's package: sudo apt-get install -y nginx")
    return problems


def run(cmd: list[str], timeout: float, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd`` to completion within ``timeout`` seconds, output captured."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{cmd[0]} took longer than {timeout:.0f}s: {' '.join(cmd)}") from None
    if check and done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-500:]
        raise BenchError(f"{cmd[0]} exited with {done.returncode}: {tail}")
    return done


def tool_version(cmd: list[str]) -> str:
    try:
        done = run(cmd, timeout=10, check=False)
    except (OSError, BenchError):
        return "unknown"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


# -- /proc ---------------------------------------------------------------------

def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name (which may hold spaces)."""
    with open(f"/proc/{pid}/stat") as stream:
        text = stream.read()
    return text[text.rindex(")") + 2:].split()


def start_time(pid: int) -> int | None:
    """Start time in clock ticks since boot: with the PID, names a process uniquely."""
    try:
        return int(_stat_fields(pid)[19])
    except (OSError, ValueError, IndexError):
        return None


def process_tree(root: int) -> list[int]:
    """``root`` and all its live descendants (workers forked by a server)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            parent = int(_stat_fields(int(entry))[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def cpu_seconds(root: int) -> float:
    """User+system CPU of the tree, plus what its reaped children used."""
    ticks = 0
    for pid in process_tree(root):
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
        if pid == root:
            ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / CLK_TCK


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of one process, in bytes."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as stream:
            for line in stream:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return values


def reset_peak(pids: list[int]) -> bool:
    """Reset VmHWM to the current RSS (writing 5 to clear_refs, Linux >= 4.0)."""
    ok = True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as stream:
                stream.write("5")
        except OSError:
            ok = False
    return ok


class Meter:
    """CPU seconds and peak RSS of one server's process tree over a span."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.cpu_at_start = 0.0
        self.peak_reset = False

    def start(self, reset: bool = False) -> None:
        """Start counting CPU; with ``reset``, peak RSS too."""
        if reset:
            self.peak_reset = reset_peak(process_tree(self.root))
        self.cpu_at_start = cpu_seconds(self.root)

    def cpu(self) -> float:
        return cpu_seconds(self.root) - self.cpu_at_start

    def peak_rss(self) -> int:
        """Largest VmHWM among the tree's processes (one worker serves a request)."""
        return max((memory(pid).get("VmHWM", 0) for pid in process_tree(self.root)), default=0)

    def rss(self) -> dict[int, int]:
        return {pid: memory(pid).get("VmRSS", 0) for pid in process_tree(self.root)}


def stop_tree(process: subprocess.Popen, timeout: float) -> None:
    """Stop a server we started and the workers it forked, by PID only.

    SIGTERM to the server lets it stop its own workers cleanly; whatever of
    the recorded tree is still there after ``timeout`` (checked by PID and
    start time, so a reused PID is never hit) gets SIGKILL.
    """
    if process.poll() is not None:
        return
    recorded = record(process_tree(process.pid))
    try:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    kill_recorded(recorded, timeout)
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        pass


def record(pids: list[int]) -> list[tuple[int, int | None]]:
    """PIDs with their start times, so a later kill never hits a reused PID."""
    return [(pid, start_time(pid)) for pid in pids]


def kill_recorded(recorded: list[tuple[int, int | None]], grace: float = 0.0) -> None:
    """SIGKILL whatever of ``recorded`` is still there after ``grace`` seconds."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive(recorded):
        time.sleep(0.05)
    for pid, _started in _alive(recorded):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _alive(recorded: list[tuple[int, int | None]]) -> list[tuple[int, int | None]]:
    return [(pid, started) for pid, started in recorded
            if started is not None and start_time(pid) == started and not _zombie(pid)]


def _zombie(pid: int) -> bool:
    try:
        return _stat_fields(pid)[0] == "Z"
    except OSError:
        return True


# -- disk ----------------------------------------------------------------------

def free_bytes(path: str) -> int:
    return shutil.disk_usage(path).free


def filesystem_type(path: str) -> str:
    """The type of the filesystem holding ``path`` (tmpfs makes fsync free)."""
    path = os.path.realpath(path)
    best, kind = "", "unknown"
    try:
        with open("/proc/self/mounts") as stream:
            for line in stream:
                fields = line.split()
                mount = fields[1].replace("\\040", " ")
                inside = path == mount or path.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best):
                    best, kind = mount, fields[2]
    except OSError:
        pass
    return kind


def write_random_file(path: str, size: int) -> None:
    """``size`` incompressible bytes: a random MiB block repeated, fast to make."""
    block = os.urandom(MiB)
    with open(path, "wb") as stream:
        remaining = size
        while remaining:
            piece = block[:min(MiB, remaining)]
            stream.write(piece)
            remaining -= len(piece)


def loadavg() -> list[float]:
    try:
        with open("/proc/loadavg") as stream:
            return [float(x) for x in stream.read().split()[:3]]
    except OSError:
        return []
