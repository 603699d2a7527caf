"""What a process costs, read from Linux's /proc: CPU seconds, peak RSS and threads.

The bench watches the server from the outside, so it needs no hook inside lanchat:
`cpu_seconds(pid)` is utime + stime of /proc/PID/stat, `sample(pid)` adds VmRSS, VmHWM
(the kernel's own peak-RSS mark) and Threads from /proc/PID/status. `Watch` keeps the
highest thread count and RSS seen across repeated samples. Linux only.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from typing import Dict, Optional

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # /proc/PID/stat counts CPU in these


class ProcessGone(RuntimeError):
    """The process has exited (its /proc entry is gone)."""


@dataclass(frozen=True)
class Sample:
    """One look at a process: CPU seconds so far, RSS now and at peak, threads now."""

    cpu_s: float
    rss_bytes: int
    hwm_bytes: int
    threads: int


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far (all its threads)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            raw = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        raise ProcessGone(pid) from None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
    return (utime + stime) / CLOCK_TICKS


def _status(pid: int) -> Dict[str, str]:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            lines = status.read().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        raise ProcessGone(pid) from None
    fields = {}
    for line in lines:
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _kib(value: Optional[str]) -> int:
    """Bytes of a status field such as '1234 kB' (0 when absent, as for a zombie)."""
    if not value:
        return 0
    return int(value.split()[0]) * 1024


def sample(pid: int) -> Sample:
    """CPU seconds, RSS, peak RSS and thread count of a live process."""
    cpu = cpu_seconds(pid)
    fields = _status(pid)
    return Sample(
        cpu_s=cpu,
        rss_bytes=_kib(fields.get("VmRSS")),
        hwm_bytes=_kib(fields.get("VmHWM")),
        threads=int(fields.get("Threads", "0")),
    )


class Watch:
    """Samples one process now and then and keeps the peaks (threads, RSS)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_threads = 0
        self.peak_rss_bytes = 0
        self.last: Optional[Sample] = None

    def poll(self) -> Optional[Sample]:
        """Take one sample and update the peaks; None if the process is gone."""
        try:
            now = sample(self.pid)
        except ProcessGone:
            return None
        self.last = now
        self.peak_threads = max(self.peak_threads, now.threads)
        # VmHWM is the kernel's own high-water mark, so a peak between samples counts too.
        self.peak_rss_bytes = max(self.peak_rss_bytes, now.hwm_bytes, now.rss_bytes)
        return now


@dataclass(frozen=True)
class SystemTimes:
    """Seconds every CPU of the machine spent busy, idle and stolen (by the hypervisor)."""

    busy_s: float
    idle_s: float
    steal_s: float


def system_times() -> SystemTimes:
    """The machine-wide CPU counters of /proc/stat (all cores summed)."""
    with open("/proc/stat", encoding="ascii") as stat:
        first = stat.readline().split()
    # cpu user nice system idle iowait irq softirq steal guest guest_nice (proc(5));
    # guest time is already inside user, so it is not added again.
    ticks = [int(value) for value in first[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = ticks
    return SystemTimes(
        busy_s=(user + nice + system + irq + softirq) / CLOCK_TICKS,
        idle_s=(idle + iowait) / CLOCK_TICKS,
        steal_s=steal / CLOCK_TICKS,
    )


def listen_overflows() -> int:
    """Connections the machine's listening sockets had no room for so far (TcpExt).

    The kernel drops the handshake when a listen queue is full, and the client retries
    after a second or more, so each overflow during logins is a wait the login time
    includes. Machine-wide: other programs' listeners count too. 0 where not readable.
    """
    try:
        with open("/proc/net/netstat", encoding="ascii") as netstat:
            lines = netstat.read().splitlines()
    except OSError:
        return 0
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            fields = dict(zip(names.split()[1:], values.split()[1:]))
            return int(fields.get("ListenOverflows", 0))
    return 0


def own_cpu_seconds() -> float:
    """CPU seconds (user + system) this process has used: the load generator's cost."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuClock:
    """CPU seconds and wall seconds between `start()` and `stop()`, for any CPU source."""

    def __init__(self) -> None:
        self.cpu_s = 0.0
        self.wall_s = 0.0
        self._cpu0 = 0.0
        self._wall0 = 0.0

    def start(self, cpu_now: float) -> None:
        """Mark the start with the CPU reading taken now."""
        self._cpu0 = cpu_now
        self._wall0 = time.monotonic()

    def stop(self, cpu_now: float) -> None:
        """Mark the end with the CPU reading taken now."""
        self.cpu_s = cpu_now - self._cpu0
        self.wall_s = time.monotonic() - self._wall0

    @property
    def percent(self) -> float:
        """CPU use over the interval, in percent of one core."""
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0
