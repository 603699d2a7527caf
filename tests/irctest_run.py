"""Run irctest's server tests against the built lanchat.pyz and print the results table.

    python tests/irctest_run.py IRCTEST_DIR [--pyz dist/lanchat.pyz] [--json FILE]

IRCTEST_DIR is irctest 0.1.2 unpacked (`make irctest-suite` fetches it into .venv), with
its dependencies in IRCTEST_DIR/deps. Every test of irctest's `server_tests` is run with
`irctest_controller.LanchatController`, as irctest's own command line would (every
specification, strict), except that each test is cut after TEST_TIMEOUT seconds: irctest's
client waits for a PONG for ever. One row per test: `pass`, `fail` (an assertion or an
error) or `skip`, and why for the latter two. `--json` also writes {test: [outcome, why]}.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import unittest
from pathlib import Path
from types import FrameType
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
TEST_TIMEOUT = 20  # seconds; the slowest test takes about 3

Outcome = Tuple[str, str]  # ("pass" | "fail" | "skip", why)


class TestTimeout(Exception):
    """A test ran past TEST_TIMEOUT."""


class Results(unittest.TestResult):
    """Each test's outcome, by irctest's name for it (`test_cap.CapTestCase.testNoReq`);
    each test has TEST_TIMEOUT seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.outcomes: Dict[str, Outcome] = {}

    def startTest(self, test: unittest.TestCase) -> None:
        super().startTest(test)
        signal.alarm(TEST_TIMEOUT)

    def stopTest(self, test: unittest.TestCase) -> None:
        signal.alarm(0)
        super().stopTest(test)
        self.outcomes.setdefault(test.id(), ("pass", ""))

    def addFailure(self, test: unittest.TestCase, err) -> None:  # type: ignore[no-untyped-def]
        super().addFailure(test, err)
        self.outcomes[test.id()] = ("fail", _first_line(err[1]))

    def addError(self, test: unittest.TestCase, err) -> None:  # type: ignore[no-untyped-def]
        super().addError(test, err)
        self.outcomes[test.id()] = ("fail", f"{err[0].__name__}: {_first_line(err[1])}")

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        super().addSkip(test, reason)
        self.outcomes[test.id()] = ("skip", reason)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[-1] if text else ""


def _on_alarm(signum: int, frame: Optional[FrameType]) -> None:
    raise TestTimeout(f"no end within {TEST_TIMEOUT} s")


def run_suite(irctest_dir: Path, pyz: Path) -> Dict[str, Outcome]:
    """Every server test of irctest against lanchat: {test name: (outcome, why)}."""
    sys.path[:0] = [str(irctest_dir), str(irctest_dir / "deps"), str(ROOT)]
    from irctest import server_tests  # type: ignore[import-not-found]
    from irctest.cases import _IrcTestCase  # type: ignore[import-not-found]
    from irctest.specifications import Specifications  # type: ignore[import-not-found]
    from irctest_controller import LanchatController

    LanchatController.pyz = str(pyz)
    _IrcTestCase.controllerClass = LanchatController
    LanchatController.openssl_bin = "openssl"
    _IrcTestCase.show_io = False
    _IrcTestCase.strictTests = True
    _IrcTestCase.testedSpecifications = frozenset(Specifications)
    signal.signal(signal.SIGALRM, _on_alarm)
    results = Results()
    server_tests.discover().run(results)
    return results.outcomes


def table(outcomes: Dict[str, Outcome]) -> List[str]:
    """The results as a Markdown table, and a count."""
    rows = ["| irctest server test | result | why |", "| --- | --- | --- |"]
    for name, (outcome, why) in sorted(outcomes.items()):
        rows.append(f"| {name} | {outcome} | {why.replace('|', '/')} |")
    counts = {o: sum(1 for v, _ in outcomes.values() if v == o) for o in ("pass", "fail", "skip")}
    rows.append("")
    rows.append(", ".join(f"{n} {o}" for o, n in counts.items()) + f" of {len(outcomes)}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("irctest_dir", type=Path)
    parser.add_argument("--pyz", type=Path, default=ROOT / "dist" / "lanchat.pyz")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    outcomes = run_suite(args.irctest_dir.resolve(), args.pyz.resolve())
    print("\n".join(table(outcomes)))
    if args.json:
        args.json.write_text(json.dumps(outcomes, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
