"""LAN discovery on a real network: hosts made of network namespaces, never this machine's.

Each test builds its own LAN: a "switch" namespace holding one bridge per subnet, and one
namespace per host joined to it by a veth pair whose peer is created directly inside the
switch, so no interface, address or packet ever touches the machine's own namespace. The
subnets (10.77.N.0/24) exist only inside these namespaces. Names carry the pid and a
counter, so two runs at once never collide, and everything is torn down in a `finally`.
Where namespaces cannot be made (not root, no `ip`, no veth or bridge support) the tests
skip and say why. Programs inside run the built pyz, as a user would.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import pytest
from conftest import ROOT, pyz_command

from lanchat import protocol
from lanchat.chat import finder

pytestmark = [pytest.mark.netns, pytest.mark.pyz]

PREFIX = "lanchat-t"  # every namespace this file makes starts so, then the pid
_counter = itertools.count()
WAIT = 20.0  # the longest any one step may take before the test fails


class LanUnavailable(Exception):
    """Namespaces, bridges or veths cannot be made here."""


def ip(*args: str) -> str:
    """Run `ip ARGS`; raise LanUnavailable with ip's own words when it fails."""
    try:
        done = subprocess.run(
            ["ip", *args], capture_output=True, text=True, timeout=WAIT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LanUnavailable(f"ip {' '.join(args)}: {exc}") from None
    if done.returncode != 0:
        raise LanUnavailable(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


class Process:
    """A program running inside a namespace; its output lines are read as they come."""

    def __init__(self, argv: Sequence[str], env: Optional[Dict[str, str]] = None) -> None:
        self.argv = list(argv)
        self.popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: List[str] = []
        self._queue: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="netns-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = WAIT) -> str:
        """The first output line matching the regex; fail the test after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if re.search(pattern, line):
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(
                    f"no line matching {pattern!r} in {timeout}s from {self.argv}:\n"
                    + "\n".join(self.lines)
                )
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self._queue.put(None)  # keep the end marker for the next caller
                pytest.fail(f"{self.argv} ended without {pattern!r}:\n" + "\n".join(self.lines))
            self.lines.append(line)

    def write(self, text: str) -> None:
        """Type a line (or more) on its stdin."""
        assert self.popen.stdin is not None
        self.popen.stdin.write(text)
        self.popen.stdin.flush()

    def stop(self) -> None:
        """End it (TERM, then KILL), each wait bounded; keep all it printed in `lines`."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        if self.popen.stdin:
            self.popen.stdin.close()
        self._reader.join(timeout=5)
        if self.popen.stdout:
            self.popen.stdout.close()
        while not self._queue.empty():
            line = self._queue.get_nowait()
            if line is not None:
                self.lines.append(line)


class Lan:
    """A switch namespace with a bridge per subnet, and host namespaces plugged into it."""

    def __init__(self, home: Path) -> None:
        self.tag = f"{PREFIX}{os.getpid()}-{next(_counter)}"
        # Whatever a program keeps on disk goes to this test's folder, not the user's.
        kinds = ("DATA", "STATE", "CONFIG", "CACHE")
        self.env = {**os.environ, **{f"XDG_{k}_HOME": str(home / k.lower()) for k in kinds}}
        self.switch = f"{self.tag}-sw"
        self.namespaces: List[str] = []
        self.subnets: List[int] = []
        self.hosts: Dict[str, Dict[int, str]] = {}  # host namespace -> subnet -> address
        self.processes: List[Process] = []

    def _add_namespace(self, name: str) -> None:
        ip("netns", "add", name)
        self.namespaces.append(name)
        ip("-n", name, "link", "set", "lo", "up")

    def start(self) -> None:
        self._add_namespace(self.switch)

    def _bridge(self, subnet: int) -> str:
        bridge = f"br{subnet}"
        if subnet not in self.subnets:
            ip("-n", self.switch, "link", "add", bridge, "type", "bridge")
            ip("-n", self.switch, "link", "set", bridge, "up")
            self.subnets.append(subnet)
        return bridge

    def host(self, label: str, *subnets: int) -> str:
        """A new host on these subnets (default: 0); its address on each is 10.77.N.<k>."""
        name = f"{self.tag}-{label}"
        self._add_namespace(name)
        self.hosts[name] = {}
        number = len(self.hosts)
        for index, subnet in enumerate(subnets or (0,)):
            bridge = self._bridge(subnet)
            port = f"v{number}s{subnet}"  # the switch's end; the host's end is ethN
            device = f"eth{index}"
            ip("-n", self.switch, "link", "add", port, "type", "veth",
               "peer", "name", device, "netns", name)  # fmt: skip
            ip("-n", self.switch, "link", "set", port, "master", bridge, "up")
            address = f"10.77.{subnet}.{number}"
            # No `brd`: the client must compute the broadcast address, as the NOTES warn.
            ip("-n", name, "addr", "add", f"{address}/24", "dev", device)
            ip("-n", name, "link", "set", device, "up")
            self.hosts[name][subnet] = address
        return name

    def address(self, host: str, subnet: int = 0) -> str:
        return self.hosts[host][subnet]

    def command(self, host: str, *argv: str) -> List[str]:
        return ["ip", "netns", "exec", host, *argv]

    def spawn(self, host: str, *argv: str, env: Optional[Dict[str, str]] = None) -> Process:
        process = Process(self.command(host, *argv), env=env or self.env)
        self.processes.append(process)
        return process

    def run(self, host: str, *argv: str, stdin: str = "", env: Optional[Dict[str, str]] = None):
        return subprocess.run(
            self.command(host, *argv),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=WAIT,
            env=env or self.env,
        )

    def server(self, host: str, *args: str) -> Process:
        """`lanchat.pyz server` on this host, once it says it is listening."""
        # No history file: two hosts' servers on port 42069 would share one on this disk.
        process = self.spawn(host, *pyz_command("server", "--no-history", *args))
        process.wait_for(r"listening on \S+:\d+")
        return process

    def discover(self, host: str, *args: str):
        """`lanchat.pyz discover` on this host, run to its end."""
        return self.run(host, *pyz_command("discover", *args))

    def client(self, host: str, name: str, *args: str, stdin: str = ""):
        """`lanchat.pyz client --plain` on this host, typing `stdin`, run to its end."""
        return self.run(host, *pyz_command("client", "--plain", "--name", name, *args), stdin=stdin)

    def close(self) -> None:
        for process in self.processes:
            process.stop()
        # Deleting a namespace destroys its interfaces, veth peers included.
        for name in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=WAIT)


def _remove_stale_namespaces() -> None:
    """Namespaces left by a run that was killed (its pid is gone) are removed."""
    try:
        listing = ip("netns", "list")
    except LanUnavailable:
        return
    for line in listing.splitlines():
        match = re.match(rf"({re.escape(PREFIX)}(\d+)-\S+)", line)
        if match and not Path(f"/proc/{match.group(2)}").exists():
            subprocess.run(
                ["ip", "netns", "del", match.group(1)], capture_output=True, timeout=WAIT
            )


@pytest.fixture
def lan(pyz: Path, tmp_path: Path) -> Iterator[Lan]:
    """A LAN of namespaces for one test; skipped with the reason where it cannot be made."""
    if not sys.platform.startswith("linux"):
        pytest.skip("network namespaces are Linux only")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("the 'ip' command (iproute2) is not installed")
    _remove_stale_namespaces()
    net = Lan(tmp_path)
    try:
        try:
            net.start()
        except LanUnavailable as exc:
            pytest.skip(f"cannot make a network namespace: {exc}")
        yield net
    finally:
        net.close()


def make_hosts(lan: Lan, *labels: str) -> List[str]:
    """Hosts on subnet 0, or a skip if this kernel has no bridge or veth."""
    try:
        return [lan.host(label) for label in labels]
    except LanUnavailable as exc:
        pytest.skip(f"cannot build the test LAN: {exc}")


def json_lines(text: str) -> List[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# A responder of a future major version, as a lanchat 5 server would answer.
FUTURE_RESPONDER = r"""
import json, socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
while True:
    data, sender = sock.recvfrom(65535)
    try:
        probe = json.loads(data)
    except ValueError:
        continue
    if probe.get("type") == "discover":
        answer = {"type": "server", "app": "lanchat", "version": "5.0.0", "server": "future",
                  "port": int(sys.argv[1]), "users": 0, "max_users": 10}
        sock.sendto(json.dumps(answer).encode() + b"\n", sender)
"""


def source_env(lan: Lan) -> Dict[str, str]:
    """The environment for a helper script that imports lanchat from this checkout."""
    return {**lan.env, "PYTHONPATH": str(ROOT)}


# ---------------------------------------------------------------------------


def test_broadcast_addresses_of_a_host_are_its_own_subnets(lan):
    """Inside a host on two subnets the probe goes to both, and to nothing else."""
    try:
        host = lan.host("multi", 0, 1)
    except LanUnavailable as exc:
        pytest.skip(f"cannot build the test LAN: {exc}")
    script = "from lanchat import lan; print(' '.join(lan.broadcast_addresses()))"
    done = lan.run(host, sys.executable, "-c", script, env=source_env(lan))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["10.77.0.255", "10.77.1.255"]


def test_client_on_another_host_finds_the_server_and_chats(lan):
    server_host, client_host = make_hosts(lan, "a", "b")
    lan.server(server_host, "--name", "alpha")
    # carol sits on the server's host, bob on another: neither is told where the server is.
    carol = lan.spawn(server_host, *pyz_command("client", "--plain", "--name", "carol"))
    carol.wait_for(r"-- you are carol on alpha")
    bob = lan.client(client_host, "bob", stdin="hello from b\n")
    assert bob.returncode == 0, bob.stderr
    assert "you are bob on alpha" in bob.stdout
    assert re.search(r"^\d\d:\d\d #general bob: hello from b$", bob.stdout, re.M)
    carol.wait_for(r"^\d\d:\d\d #general bob: hello from b$")
    carol.write("hello from a\n")
    carol.wait_for(r"^\d\d:\d\d #general carol: hello from a$")


def test_client_with_several_servers_lists_them_or_joins_the_one_named(lan):
    alpha_host, bravo_host, client_host = make_hosts(lan, "a", "b", "c")
    lan.server(alpha_host, "--name", "alpha")
    lan.server(bravo_host, "--name", "bravo")
    unsure = lan.client(client_host, "dan")
    assert unsure.returncode == 1  # plain mode cannot ask: it lists and says how to choose
    assert "--server NAME" in unsure.stderr
    assert "alpha (10.77.0.1:42069" in unsure.stderr and "bravo (10.77.0.2:42069" in unsure.stderr
    chosen = lan.client(client_host, "dan", "--server", "bravo", stdin="hi bravo\n")
    assert chosen.returncode == 0, chosen.stderr
    assert "you are dan on bravo" in chosen.stdout


def test_discover_lists_the_servers_of_two_hosts(lan):
    alpha_host, bravo_host, client_host = make_hosts(lan, "a", "b", "c")
    lan.server(alpha_host, "--name", "alpha")
    lan.server(bravo_host, "--name", "bravo")
    plain = lan.discover(client_host)
    print(plain.stdout)  # shown with -s: what a person sees
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    alpha, bravo = lan.address(alpha_host), lan.address(bravo_host)
    assert [line.split() for line in lines] == [  # each with its web client's address
        ["alpha", f"{alpha}:42069", protocol.VERSION, "0/50", "users", "compatible",
         f"http://{alpha}:42169/"],
        ["bravo", f"{bravo}:42069", protocol.VERSION, "0/50", "users", "compatible",
         f"http://{bravo}:42169/"],
    ]  # fmt: skip
    listed = json_lines(lan.discover(client_host, "--json").stdout)
    assert {(s["name"], s["host"], s["port"], s["compatible"], s["web"]) for s in listed} == {
        ("alpha", alpha, 42069, True, f"http://{alpha}:42169/"),
        ("bravo", bravo, 42069, True, f"http://{bravo}:42169/"),
    }


def test_two_servers_on_one_host_are_both_found(lan):
    server_host, client_host = make_hosts(lan, "a", "c")
    first = lan.server(server_host, "--name", "first")
    second = lan.server(server_host, "--name", "second")
    assert first.wait_for("listening on").endswith(":42069")
    assert second.wait_for("listening on").endswith(":42070")  # 42069 was taken
    done = lan.discover(client_host, "--json")
    assert done.returncode == 0, done.stderr
    address = lan.address(server_host)
    assert sorted((s["name"], s["host"], s["port"]) for s in json_lines(done.stdout)) == [
        ("first", address, 42069),
        ("second", address, 42070),
    ]


def test_port_range_scan_finds_servers_that_do_not_answer_discovery(lan):
    server_host, client_host = make_hosts(lan, "a", "c")
    lan.server(server_host, "--name", "first", "--no-discovery")
    lan.server(server_host, "--name", "second", "--no-discovery")
    address = lan.address(server_host)
    done = lan.discover(client_host, "--host", address, "--json")
    assert done.returncode == 0, done.stderr
    assert sorted((s["name"], s["port"]) for s in json_lines(done.stdout)) == [
        ("first", 42069),
        ("second", 42070),
    ]


def test_a_server_of_another_major_version_is_listed_as_incompatible(lan):
    server_host, future_host, client_host = make_hosts(lan, "a", "f", "c")
    future = lan.spawn(future_host, sys.executable, "-c", FUTURE_RESPONDER, "42069")
    future.wait_for("ready")
    alone = lan.client(client_host, "bob", stdin="hi\n")
    assert alone.returncode == 1  # never joined
    assert "speaks lanchat 5.0.0" in alone.stderr
    lan.server(server_host, "--name", "alpha")
    plain = lan.discover(client_host)
    assert plain.returncode == 0, plain.stderr
    assert [line.split()[::5] for line in plain.stdout.splitlines()] == [
        ["alpha", "compatible"],  # compatible ones first
        ["future", "incompatible"],
    ]
    # The one compatible server is joined at once; the incompatible one is not a choice.
    bob = lan.client(client_host, "bob", stdin="hi\n")
    assert bob.returncode == 0, bob.stderr
    assert "you are bob on alpha" in bob.stdout


def test_no_server_at_all_gives_the_clear_message(lan):
    (client_host,) = make_hosts(lan, "c")
    make_hosts(lan, "empty")  # a LAN with another host, but no lanchat on it
    done = lan.discover(client_host)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == f"lanchat: {finder.no_server_message()}\n"
    alone = lan.client(client_host, "bob", stdin="hi\n")
    assert alone.returncode == 1
    assert alone.stdout == ""
    assert alone.stderr.count("\n") == 1
    assert alone.stderr.startswith("lanchat: no server found")
