"""ngircd as the bench's peer: the config file the bench writes and the command it runs.

The bench starts `ngircd --nodaemon --config FILE` itself, listening on 127.0.0.1 only, on
a free port, with every limit that would stop the load lifted: no connection limit in
total or per address (every bench client comes from 127.0.0.1), no channel limit, no
DNS, IDENT or PAM look-ups on connect, and no penalty time (`MaxPenaltyTime = 0`: ngircd
otherwise delays a client's next commands after each one). ngircd still reads at most a
few commands per client per loop round, which the bench's load (under 1 message a second
per client) never comes near. Debian's package: `apt-get install ngircd`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path
from typing import List, Optional

# ngircd's log line once it listens: "Now listening on [127.0.0.1]:6667 (socket 6)."
READY = re.compile(rb"Now listening on \[?127\.0\.0\.1\]?:(\d+)")
# Its log lines start "[PID:LEVEL TIME]", syslog levels: 0 emergency ... 4 warning.
_WARNING = re.compile(r"\[\d+:[0-4] ")
INSTALL_HINT = "apt-get install ngircd"


def config_text(port: int) -> str:
    """An ngircd.conf for one bench scenario on 127.0.0.1:`port`."""
    return f"""\
[Global]
Name = bench.lanchat.invalid
Info = lanchat bench peer
AdminInfo1 = lanchat bench
AdminInfo2 = loopback only
AdminEMail = nobody@bench.lanchat.invalid
Listen = 127.0.0.1
Ports = {port}
MotdPhrase = lanchat bench

[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 16
MaxPenaltyTime = 0
PingTimeout = 600
PongTimeout = 600

[Options]
DNS = no
Ident = no
PAM = no
"""


def write_config(directory: Path, port: int) -> Path:
    """Write the scenario's ngircd.conf into `directory`; return its path."""
    path = directory / "ngircd.conf"
    path.write_text(config_text(port), "utf-8")
    return path


def find(command: str) -> Optional[List[str]]:
    """The command line that runs ngircd (`command` split like a shell); None if missing.

    Debian puts ngircd in /usr/sbin, which a user's PATH may lack, so that is searched too.
    """
    words = shlex.split(command)
    if not words:
        return None
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    found = shutil.which(words[0], path=search)
    return [found, *words[1:]] if found else None


def argv(command: List[str], config: Path) -> List[str]:
    """ngircd in the foreground with the bench's config."""
    return [*command, "--nodaemon", "--config", str(config)]


def warnings(log_lines: List[str]) -> List[str]:
    """The lines of ngircd's log that are warnings or worse."""
    return [line for line in log_lines if _WARNING.match(line)]
