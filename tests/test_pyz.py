"""The shipped zipapp: it runs on every CPython 3.8+ at hand, and its build is reproducible.

Interpreters come from pyenv (`pyenv root`/versions/3.X.*) or from PATH (`python3.X`);
a minor version that is not installed is skipped. The build tests call `make pyz` with
the `PYZ=` output path, reusing this checkout's virtual environment.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import List, Optional, Tuple

import pytest
from conftest import ROOT

pytestmark = pytest.mark.pyz

MINORS = range(8, 15)  # CPython 3.8 .. 3.14
TIMEOUT = 120  # seconds for one subprocess; a cold shiv extraction is well under that


def _pyenv_root() -> Optional[Path]:
    """pyenv's root folder, if pyenv is installed."""
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        default = Path.home() / ".pyenv"
        return default if default.is_dir() else None
    try:
        out = subprocess.run(
            [pyenv, "root"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out.strip())


def _version_of(python: str) -> Optional[Tuple[int, int]]:
    """The (major, minor) an interpreter reports, None if it does not run."""
    try:
        result = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.fullmatch(r"(\d+)\.(\d+)\s*", result.stdout)
    if result.returncode != 0 or match is None:
        return None  # e.g. a pyenv shim for a version that is not selected
    return int(match.group(1)), int(match.group(2))


def find_python(minor: int) -> Optional[str]:
    """A CPython 3.<minor> interpreter: pyenv's first, then python3.<minor> on PATH."""
    candidates: List[str] = []
    root = _pyenv_root()
    if root is not None:
        pattern = re.compile(rf"3\.{minor}\.\d+")
        versions = sorted((root / "versions").glob(f"3.{minor}.*"), reverse=True)
        candidates += [str(v / "bin" / "python3") for v in versions if pattern.fullmatch(v.name)]
    on_path = shutil.which(f"python3.{minor}")
    if on_path:
        candidates.append(on_path)
    for python in candidates:
        if os.access(python, os.X_OK) and _version_of(python) == (3, minor):
            return python
    return None


def run(argv: List[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a command with a timeout and captured text output."""
    return subprocess.run(
        argv,
        cwd=str(cwd),
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT,
    )


@pytest.fixture(params=list(MINORS), ids=[f"3.{m}" for m in MINORS])
def python(request: pytest.FixtureRequest) -> str:
    """One CPython 3.8+ interpreter per minor version; absent ones are skipped."""
    found = find_python(request.param)
    if found is None:
        pytest.skip(f"CPython 3.{request.param} is not installed")
    return found


def test_pyz_runs_version_and_help(python: str, pyz: Path, tmp_path: Path) -> None:
    """`python3.X lanchat.pyz --version` and `--help` work on every CPython 3.8+."""
    version = run([python, str(pyz), "--version"], tmp_path)
    assert (version.returncode, version.stdout) == (0, "lanchat 4.4.0\n"), version.stderr
    helped = run([python, str(pyz), "--help"], tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "usage: lanchat" in helped.stdout
    for command in ("server", "client", "discover"):
        sub = run([python, str(pyz), command, "--help"], tmp_path)
        assert sub.returncode == 0, sub.stderr


def test_every_module_in_the_pyz_imports(python: str, pyz: Path, tmp_path: Path) -> None:
    """Each lanchat module inside the pyz imports on this interpreter (syntax and all)."""
    with zipfile.ZipFile(pyz) as archive:
        names = archive.namelist()
    modules = sorted(
        name[len("site-packages/") : -len(".py")].replace("/", ".")
        for name in names
        if re.fullmatch(r"site-packages/lanchat/(\w+/)*\w+\.py", name)
    )
    assert {"lanchat.protocol", "lanchat.core.chat", "lanchat.chat.model"} <= set(modules)
    script = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    module = importlib.import_module(name)\n"
        "    assert '.pyz' in module.__file__, module.__file__\n"
    )
    # zipimport reads the package straight from the archive; the cwd is not the repo.
    result = run(
        [python, "-c", script, *modules],
        tmp_path,
        PYTHONPATH=f"{pyz}/site-packages",
        PYTHONDONTWRITEBYTECODE="1",
    )
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------
# Reproducible builds


def _make() -> str:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    return make


def _bin() -> Path:
    """The folder of the tools (shiv) of the virtual environment running these tests."""
    for folder in (Path(sys.executable).parent, ROOT / ".venv" / "bin"):
        if (folder / "shiv").is_file():
            return folder.resolve()
    pytest.skip("shiv is not installed next to this Python (run 'make venv')")


def build(checkout: Path, output: Path) -> bytes:
    """Run `make pyz PYZ=output` in a checkout and return the zipapp's bytes."""
    bin_dir = _bin()
    result = run(
        [
            _make(),
            "--no-print-directory",
            "-C",
            str(checkout),
            # Never rebuild the shared venv (that would need the network): it is ready.
            "-o",
            str(bin_dir.parent / ".ready"),
            f"BIN={bin_dir}",
            f"READY={bin_dir.parent / '.ready'}",
            f"PYZ={output}",
            "pyz",
        ],
        checkout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert output.is_file(), f"make pyz did not write {output}"
    return output.read_bytes()


def copy_checkout(source: Path, target: Path) -> Path:
    """The files a build needs: the package, the Makefile and the requirements."""
    target.mkdir(parents=True)
    shutil.copytree(
        source / "lanchat", target / "lanchat", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("Makefile", "requirements-dev.txt"):
        shutil.copy2(source / name, target / name)
    return target


def test_two_builds_give_the_same_bytes(tmp_path: Path) -> None:
    """`make pyz` twice, into two folders, writes identical zipapps."""
    first = build(ROOT, tmp_path / "one" / "lanchat.pyz")
    second = build(ROOT, tmp_path / "two" / "nested" / "lanchat.pyz")
    assert first == second


def test_builds_from_two_checkout_paths_give_the_same_bytes(tmp_path: Path) -> None:
    """The checkout's path leaves no trace: two copies of the sources build the same."""
    snapshot = copy_checkout(ROOT, tmp_path / "a")
    elsewhere = copy_checkout(snapshot, tmp_path / "somewhere" / "much" / "deeper" / "checkout")
    first = build(snapshot, tmp_path / "out-a" / "lanchat.pyz")
    second = build(elsewhere, tmp_path / "out-b" / "lanchat.pyz")
    assert first == second
    assert str(tmp_path).encode() not in first


def test_pyz_holds_the_sources_exactly(tmp_path: Path) -> None:
    """Every lanchat/*.py of the checkout is in the pyz, byte for byte."""
    checkout = copy_checkout(ROOT, tmp_path / "src")
    built = tmp_path / "out" / "lanchat.pyz"
    build(checkout, built)
    with zipfile.ZipFile(built) as archive:
        for source in sorted((checkout / "lanchat").glob("*.py")):
            packed = archive.read(f"site-packages/lanchat/{source.name}")
            assert packed == source.read_bytes(), source.name


def test_pyz_holds_nothing_but_the_package(tmp_path: Path) -> None:
    """Under site-packages/ the archive holds the lanchat package and nothing else."""
    checkout = copy_checkout(ROOT, tmp_path / "src")
    built = tmp_path / "out" / "lanchat.pyz"
    build(checkout, built)
    with zipfile.ZipFile(built) as archive:
        packed = {n for n in archive.namelist() if n.startswith("site-packages/")}
    expected = {
        f"site-packages/{p.relative_to(checkout).as_posix()}"
        for p in (checkout / "lanchat").rglob("*")
        if p.is_file()
    }
    assert packed == expected
