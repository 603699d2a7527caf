"""One bench scenario end to end: start the server, load it, measure, stop it.

The server is a lanchat build (a pyz) or the IRC peer (ngircd, driven by the load
generator's IRC mode, which also plays a build's IRC gateway in the `irc` scenarios); its
CPU, RSS and threads are read from /proc the same way for both. `run(scenario, target,
options)` returns the scenario's figures as a flat dict (the JSON result and the table
both come from it). Each scenario gets a fresh server, so
its peak RSS (VmHWM) and thread count belong to that scenario alone. The server only ever
listens on 127.0.0.1.
"""

from __future__ import annotations

import functools
import math
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from bench import ngircd, procstat
from bench.ircgen import CHANNEL, GatewayLoadGen, IrcLoadGen
from bench.loadgen import LoadGen
from bench.tlsgen import TlsLoadGen
from bench.wsgen import WsLoadGen
from lanchat.tls import CertificateError, fingerprint_of_pem_file, self_signed

HOST = "127.0.0.1"
SERVER_DEFAULT_RATE = 5.0  # lanchat server defaults, passed explicitly so results say so
SERVER_DEFAULT_BURST = 30
LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")
# The start-up line of the server's web client (HTTP and WebSocket, https with --tls);
# group 1 is its port.
WEB_LISTENING = re.compile(rb"web client: https?://[^/\s]+:(\d+)/")
TLS_LINE = "TLS: SHA256:"  # how the start-up line with the certificate's fingerprint starts
# The start-up line of the server's IRC gateway (`IRC: 127.0.0.1:6667`); group 1 is its port.
IRC_LISTENING = re.compile(rb"IRC: 127\.0\.0\.1:(\d+)")
# lanchat's own port, WebSocket on the web port, lanchat's own port over TLS, or IRC
# through the gateway (`--irc-port`).
TRANSPORTS = ("tcp", "ws", "tls", "irc")
# Figures only a traffic scenario has; an idle row carries them as null.
TRAFFIC_KEYS = (
    "sent",
    "rejected",
    "unsent",
    "duplicates",
    "sent_msg_s",
    "deliveries_s",
    "latency_p50_ms",
    "latency_p99_ms",
    "latency_max_ms",
    "send_lag_max_ms",
    "late_sends",
    "read_lag_p99_ms",
    "read_lag_max_ms",
    "events_per_poll",
    "user_stamped_recvs",
    "latency_clock",
    "gen_us_per_delivery",
)


class BenchError(RuntimeError):
    """The bench could not run a scenario (the server did not start, nobody logged in)."""


@dataclass(frozen=True)
class Scenario:
    """What to run: clients, offered room messages per second (0: idle), for how long,
    over how many rooms (0: one room, clients that do not speak rooms), and over which
    transport (`tcp`: lanchat's port; `ws`: WebSocket on the web port, as the web page;
    `tls`: lanchat's port over TLS, the server started with `--tls`; `irc`: IRC clients
    through lanchat's gateway, in one channel)."""

    name: str
    clients: int
    rate: float
    duration: float
    rooms: int = 0  # > 0: client i speaks rooms (4.2) and is in room i mod rooms
    transport: str = "tcp"

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, not {self.transport!r}")
        if self.irc and self.rooms:
            # The gateway puts every IRC client in the default room at login: a room of
            # its own would be a second channel, with its joins counted apart.
            raise ValueError("the irc transport plays one channel: rooms must be 0")

    @property
    def websocket(self) -> bool:
        """Whether the clients speak WebSocket to the web port."""
        return self.transport == "ws"

    @property
    def tls(self) -> bool:
        """Whether the clients speak TLS to a server started with `--tls`."""
        return self.transport == "tls"

    @property
    def irc(self) -> bool:
        """Whether the clients speak IRC to lanchat's gateway (the IRC peer always hears IRC)."""
        return self.transport == "irc"


@dataclass(frozen=True)
class Target:
    """A server the scenarios run against: a lanchat build, or the IRC peer."""

    label: str  # its name in the table's `server` column
    pyz: Optional[Path] = None  # a lanchat build; None: the IRC peer
    peer_command: Tuple[str, ...] = ()  # how to start the IRC peer (ngircd)


@dataclass(frozen=True)
class Options:
    """How to run scenarios: which interpreter, which ports, which limits."""

    python: str
    base_port: Optional[int] = None  # None: a port the OS says is free
    login_concurrency: int = 100
    drain_quiet: float = 3.0  # traffic ends when no delivery came for this long...
    drain_max: float = 60.0  # ...or this long after the last send
    login_timeout: Optional[float] = None  # for logging in, and again for settling
    verify: bool = False
    duration: Optional[float] = None  # overrides every scenario's duration
    server_args: Tuple[str, ...] = ()  # appended to a lanchat server's command line
    presence: str = "single"  # lanchat clients ask for batched presence (4.1) or not


def free_port(avoid: int = 0) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (and not `avoid`)."""
    while True:
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            port = int(probe.getsockname()[1])
        if port != avoid:
            return port


class ServerProcess:
    """The lanchat server from the pyz as a child process, its output in a log file."""

    def __init__(self, argv: List[str], workdir: Path, ready: re.Pattern = LISTENING) -> None:
        self.argv = argv
        self.ready = ready  # the log line that says it listens; group 1 is the port
        self.log_path = workdir / "server.log"
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0
        self.web_port = 0  # the web client's port, once waited for (`wait_for`)
        self.irc_port = 0  # the IRC gateway's port, likewise

    @property
    def pid(self) -> int:
        """The server's process id (the pyz and ngircd run in-process: no wrapper)."""
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> int:
        """Start it and return the port it printed in its `ready` line."""
        # A file, not a pipe: a pipe nobody drains would stall a chatty server.
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self.port = self.wait_for(self.ready, timeout)
        return self.port

    def wait_for(self, line: re.Pattern, timeout: float = 30.0) -> int:
        """Wait until the server has printed `line`; return its group 1 (a port)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = line.search(self.log_path.read_bytes())
            if found:
                return int(found.group(1))
            if self.proc.poll() is not None:
                raise BenchError(
                    f"the server exited with {self.proc.returncode} before listening:\n"
                    + self.log_tail()
                )
            time.sleep(0.02)
        self.stop()
        raise BenchError(
            f"no {line.pattern.decode()!r} line within {timeout:.0f} s:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout` s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the server printed."""
        try:
            text = self.log_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def server_argv(
    options: Options,
    pyz: Path,
    clients: int,
    rate: float,
    burst: int,
    port: int,
    workdir: Path,
    web_port: Optional[int] = None,
    tls: Optional[Tuple[Path, Path]] = None,
    irc_port: Optional[int] = None,
) -> List[str]:
    """The command line that starts the server for a scenario; with `web_port`, its web
    client there (a TCP scenario leaves the web port to the server, unused); with `tls`
    (certificate, key), TLS on every port; with `irc_port`, its IRC gateway there, the
    bench's channel its default room."""
    # The default durable history, but in the scenario's own temporary folder: never the
    # user's data folder, and every scenario starts with an empty room.
    history = [] if "--no-history" in options.server_args else ["--history-db"]
    if history:
        history.append(str(workdir / "history.sqlite3"))
    return [
        options.python,
        str(pyz),
        "server",
        "--bind",
        HOST,
        "--port",
        str(port),
        "--max-clients",
        str(clients + 50),
        "--max-per-address",  # every bench client comes from 127.0.0.1
        str(clients + 50),
        "--rate",
        f"{rate:g}",
        "--burst",
        str(burst),
        "--log-level",
        "warning",
        "--no-discovery",
        *history,
        *(["--web-port", str(web_port)] if web_port is not None else []),
        *(["--tls", "--tls-cert", str(tls[0]), "--tls-key", str(tls[1])] if tls else []),
        *(irc_gateway_args(irc_port) if irc_port is not None else []),
        *options.server_args,
    ]


def irc_gateway_args(irc_port: int) -> List[str]:
    """The gateway on `irc_port`; its clients land in the bench's channel at login (the
    default room), so they need no JOIN and are in no other room."""
    return ["--irc-port", str(irc_port), "--default-room", CHANNEL]


def server_rate_for(scenario: Scenario) -> float:
    """The server's per-client rate limit: its default unless one sender would come near it."""
    per_sender = scenario.rate / scenario.clients
    return max(SERVER_DEFAULT_RATE, math.ceil(per_sender * 4))


def run(scenario: Scenario, target: Target, options: Options) -> Dict[str, Any]:
    """Run one scenario on a fresh server and return its figures."""
    duration = options.duration or scenario.duration
    port = options.base_port or free_port()
    web_port = irc_port = None
    if scenario.websocket:
        if target.pyz is None:
            raise BenchError(f"{scenario.name}: the IRC peer has no WebSocket")
        # As the server's default (+100) beside a chosen base port, else one free now.
        web_port = port + 100 if options.base_port else free_port(avoid=port)
    if scenario.tls and target.pyz is None:
        raise BenchError(f"{scenario.name}: the IRC peer is not set up for TLS")
    if scenario.irc and target.pyz is not None:
        # Likewise, +200 clears the web port's default.
        irc_port = port + 200 if options.base_port else free_port(avoid=port)
    with tempfile.TemporaryDirectory(prefix="lanchat-bench-") as tmp:
        workdir = Path(tmp)
        server_rate: Optional[float] = None
        tls = _certificate(workdir) if scenario.tls else None
        if target.pyz is None:
            config = ngircd.write_config(workdir, port)
            argv = ngircd.argv(list(target.peer_command), config)
            server = ServerProcess(argv, workdir, ready=ngircd.READY)
        else:
            server_rate = server_rate_for(scenario)
            argv = server_argv(
                options,
                target.pyz,
                scenario.clients,
                server_rate,
                SERVER_DEFAULT_BURST,
                port,
                workdir,
                web_port,
                tls,
                irc_port,
            )
            server = ServerProcess(argv, workdir)
        try:
            server.start()
            if web_port is not None:
                server.web_port = server.wait_for(WEB_LISTENING)
            if irc_port is not None:
                server.irc_port = server.wait_for(IRC_LISTENING)
            fingerprint = fingerprint_of_pem_file(tls[0]) if tls else None
            return _measure(scenario, target, options, duration, server, server_rate, fingerprint)
        finally:
            server.stop()


def _certificate(workdir: Path) -> Tuple[Path, Path]:
    """A throwaway certificate and key for a TLS scenario's server, in its folder, made
    as `lanchat server --tls` makes its own (never the user's own pair)."""
    try:
        return self_signed(workdir / "tls", HOST)
    except CertificateError as exc:
        raise BenchError(str(exc)) from None


def generator_class(
    scenario: Scenario, peer: bool, fingerprint: Optional[str] = None
) -> Callable[..., LoadGen]:
    """The load generator that speaks the scenario's protocol to this server."""
    if peer:
        return IrcLoadGen
    if scenario.irc:
        return GatewayLoadGen
    if scenario.websocket:
        return WsLoadGen
    if scenario.tls:
        return functools.partial(TlsLoadGen, fingerprint=fingerprint)
    return LoadGen


def _measure(
    scenario: Scenario,
    target: Target,
    options: Options,
    duration: float,
    server: ServerProcess,
    server_rate: Optional[float],
    fingerprint: Optional[str] = None,
) -> Dict[str, Any]:
    pid = server.pid
    watch = procstat.Watch(pid)
    notes: List[str] = []
    # Generous for thousands: each login fans a join out to everyone already online, so
    # the work grows with the square of the clients (5000 took 40 s on a 4.0 server).
    login_timeout = options.login_timeout or max(
        30.0, scenario.clients / 20, 10 * (scenario.clients / 1000) ** 2
    )
    peer = target.pyz is None
    irc = peer or scenario.irc  # the IRC peer hears IRC in every scenario
    gen = generator_class(scenario, peer, fingerprint)(
        HOST,
        # The gateway's or the web client's port when the scenario waited for one.
        server.irc_port or server.web_port or server.port,
        scenario.clients,
        login_concurrency=options.login_concurrency,
        verify=options.verify,
        presence="single" if irc else options.presence,
        rooms=scenario.rooms,
    )
    with gen:
        login_cpu0 = procstat.cpu_seconds(pid)
        overflows0 = procstat.listen_overflows()
        login = gen.login(login_timeout)
        overflows = procstat.listen_overflows() - overflows0
        settle_start = time.monotonic()
        settled = gen.settle(login_timeout)
        settle_s = time.monotonic() - settle_start
        server_login_cpu = procstat.cpu_seconds(pid) - login_cpu0
        watch.poll()
        if not settled:
            notes.append("not every join frame arrived before traffic started")
        if login.logged_in == 0:
            raise BenchError(f"no client could log in:\n{server.log_tail()}")
        if login.failed:
            notes.append(f"{login.failed} clients failed to log in: {dict(gen.drops)}")
        if overflows:
            notes.append(
                f"{overflows} connection attempts overflowed a listen queue during logins "
                "and were retried by TCP a second or more later: login s includes those waits"
            )

        server_clock = procstat.CpuClock()
        server_clock.start(procstat.cpu_seconds(pid))
        machine0 = procstat.system_times()
        gen_cpu0 = procstat.own_cpu_seconds()
        result: Dict[str, Any] = {
            "scenario": scenario.name,
            "server": target.label,
            "protocol": "irc" if irc else "lanchat",
            "transport": scenario.transport,
            "presence": gen.presence,
            "clients": scenario.clients,
            "rooms": scenario.rooms,
            "server_argv": server.argv[1:],
            "logged_in": login.logged_in,
            "login_failed": login.failed,
            "login_s": round(login.seconds, 3),
            "settle_s": round(settle_s, 3),
            "login_server_cpu_s": round(server_login_cpu, 3),
            "login_gen_cpu_s": round(login.cpu_s, 3),
            "login_listen_overflows": overflows,
            "duration_s": duration,
            "offered_msg_s": scenario.rate,
            "server_rate": server_rate,
            "server_burst": None if peer else SERVER_DEFAULT_BURST,
        }
        if scenario.rate > 0:
            report = gen.traffic(
                scenario.rate,
                duration,
                drain_quiet=options.drain_quiet,
                drain_max=options.drain_max,
                tick=watch.poll,
            )
            server_clock.stop(procstat.cpu_seconds(pid))
            result.update(
                receivers=report.receivers,
                copies_per_message=report.copies,
                sent=report.sent,
                rejected=report.rejected,
                unsent=report.unsent,
                expected=report.expected,
                received=report.received,
                lost=report.lost,
                duplicates=report.duplicates,
                misrouted=report.misrouted,
                sent_msg_s=round(report.sent_per_s, 2),
                deliveries_s=round(report.deliveries_per_s, 1),
                latency_p50_ms=round(report.latency_p50_ms, 3),
                latency_p99_ms=round(report.latency_p99_ms, 3),
                latency_max_ms=round(report.latency_max_ms, 3),
                send_lag_max_ms=round(report.send_lag_max_ms, 3),
                late_sends=report.late_sends,
                read_lag_p99_ms=round(report.read_lag_p99_ms, 3),
                read_lag_max_ms=round(report.read_lag_max_ms, 3),
                events_per_poll=round(report.events_per_poll, 1),
                user_stamped_recvs=report.user_stamped,
                latency_clock="kernel receive stamp" if not report.user_stamped else "mixed",
                gen_us_per_delivery=(
                    round(1e6 * report.gen_cpu_s / report.received, 2) if report.received else None
                ),
                gen_cpu_s=round(report.gen_cpu_s, 3),
                gen_cpu_pct=round(report.gen_cpu_percent, 1),
            )
            # CPU seconds per delivery x 1000 deliveries x 1000 ms.
            result["server_cpu_ms_per_1000"] = (
                round(1e6 * server_clock.cpu_s / report.received, 3) if report.received else None
            )
            if report.rejected:
                notes.append(f"{report.rejected} messages were rate limited (not expected)")
            if report.misrouted:
                notes.append(f"{report.misrouted} deliveries reached clients outside their room")
        else:
            gen_start = time.monotonic()
            gen.idle(duration, tick=watch.poll)
            server_clock.stop(procstat.cpu_seconds(pid))
            gen_wall = time.monotonic() - gen_start
            gen_cpu = procstat.own_cpu_seconds() - gen_cpu0
            result.update(dict.fromkeys(TRAFFIC_KEYS))  # same keys in every row
            result.update(
                receivers=gen.online,
                copies_per_message=None,
                expected=0,
                received=0,
                lost=0,
                misrouted=0,
                gen_cpu_s=round(gen_cpu, 3),
                gen_cpu_pct=round(100 * gen_cpu / gen_wall, 1),
                server_cpu_ms_per_1000=None,
            )
        machine1 = procstat.system_times()
        gen_cpu = procstat.own_cpu_seconds() - gen_cpu0
        watch.poll()
        # Whatever else ran on the machine meanwhile (other jobs, the kernel's own threads).
        window = server_clock.wall_s or 1.0
        others = (machine1.busy_s - machine0.busy_s) - server_clock.cpu_s - gen_cpu
        result.update(
            other_cpu_pct=round(max(0.0, 100 * others / window), 1),
            steal_pct=round(100 * (machine1.steal_s - machine0.steal_s) / window, 1),
            loadavg=os.getloadavg()[0],
            server_cpu_s=round(server_clock.cpu_s, 3),
            server_cpu_pct=round(server_clock.percent, 2),
            server_peak_rss_mib=round(watch.peak_rss_bytes / 2**20, 1),
            server_threads_peak=watch.peak_threads,
            disconnects=dict(gen.drops),
            errors=dict(gen.errors),
            online_at_end=gen.online,
            pings_answered=gen.pings,
            joins_seen=gen.joins,
            joins_expected=gen.expected_joins(),
            rooms_joined=gen.rooms_joined,
            presence_frames=gen.presence_frames,
            foreign_messages=gen.foreign_messages,
            bad_lines=gen.bad_lines,
            verify_mismatches=gen.verify_mismatches if options.verify else None,
            repeats=gen.repeats if options.verify else None,
        )
    # The generator is the bottleneck when it has no CPU left, sends late or reads late.
    send_lag = result["send_lag_max_ms"] or 0
    read_lag = result["read_lag_p99_ms"] or 0
    saturated = result["gen_cpu_pct"] >= 90 or send_lag > 50 or read_lag > 20
    result["gen_saturated"] = saturated
    if saturated:
        cpu = result["gen_cpu_pct"]
        why = "near its CPU limit" if cpu >= 75 else "short of CPU: the machine is busy"
        notes.append(
            f"GENERATOR BEHIND ({why}: {result['gen_cpu_pct']:.0f}% CPU, sent up to "
            f"{send_lag:.0f} ms late, read p99 {read_lag:.0f} ms late): this row shows the "
            "generator's or the machine's limit as much as the server's"
        )
    busy = result["gen_cpu_pct"] + result["server_cpu_pct"] + result["other_cpu_pct"]
    cores = os.cpu_count() or 1
    if busy + result["steal_pct"] >= 90 * cores:
        notes.append(
            f"machine CPU-bound: server {result['server_cpu_pct']:.0f}% + generator "
            f"{result['gen_cpu_pct']:.0f}% + other processes {result['other_cpu_pct']:.0f}% "
            f"+ steal {result['steal_pct']:.0f}% of {cores} cores"
        )
    if gen.online < login.logged_in:
        notes.append(f"{login.logged_in - gen.online} clients were disconnected during the run")
    # Its start-up lines (where it listens, its web client's address, its certificate's
    # fingerprint) are no warnings.
    tail = [
        line
        for line in server.log_tail().splitlines()
        if "listening on" not in line
        and not WEB_LISTENING.search(line.encode())
        and not line.startswith(TLS_LINE)
        and not IRC_LISTENING.search(line.encode())
    ]
    if peer:
        tail = ngircd.warnings(tail)  # ngircd logs every connection: keep what went wrong
    if tail:
        result["server_log_tail"] = tail
    result["notes"] = notes
    return result
