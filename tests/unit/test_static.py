"""The house style holds: ruff over the repository, mypy over the package and the scripts.

Why a test: the scripts reproduce the documented numbers but no other test runs them, so a change
to a signature they call (run_checks gaining the question it checks) surfaced only when mypy read
them. Both tools come with the dev extra that `scripts/bootstrap.py` installs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", [
    ["ruff", "check", "."],
    ["mypy", "edgecascade", "scripts"],
], ids=["ruff", "mypy"])
def test_the_code_is_lint_and_type_clean(command: list[str], tmp_path: Path) -> None:
    pytest.importorskip(command[0], reason=f"{command[0]} comes with the dev extra: pip install -e '.[dev]'")
    extra = ["--cache-dir", str(tmp_path / "cache")] if command[0] == "mypy" else ["--no-cache"]
    run = subprocess.run([sys.executable, "-m", *command, *extra], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
