"""The sandbox that runs model-written code: what outlives a killed parent, and the CPU-time bound."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgecascade.sandbox import run_python

linux = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie, dead but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@linux
def test_a_program_whose_parent_is_killed_does_not_run_on(tmp_path: Path) -> None:
    """In a session of its own, a busy loop had run on at 100% CPU, for good, after its parent was
    killed (a closed terminal, `kill`, a container stop): only the dead parent kept its timeout."""
    pid_file = tmp_path / "pid"
    program = (f"import os, pathlib\npathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))\n"
               "while True:\n    pass\n")
    parent = subprocess.Popen([sys.executable, "-c", "import sys\nfrom edgecascade.sandbox import run_python\n"
                               "run_python(sys.argv[1], timeout_s=120)", program],
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline and parent.poll() is None, "the program never started"
            time.sleep(0.05)
        child = int(pid_file.read_text())
        assert _alive(child)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(child):  # clean up before failing: never leave a busy loop behind
        os.kill(child, signal.SIGKILL)
        pytest.fail("the program ran on after its parent was killed")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")
def test_a_program_has_a_cpu_time_limit_past_its_timeout() -> None:
    run = run_python("import resource\nprint(resource.getrlimit(resource.RLIMIT_CPU))", timeout_s=2.5)
    assert run.returncode == 0 and run.stdout.strip() == "(17, 17)"  # 4 x 3 s + 5: never within the timeout


@linux  # where RLIMIT_AS is enforced (macOS does not)
def test_the_parent_watch_leaves_the_memory_limit_to_the_program() -> None:
    """The watch's thread had taken 74 MB of the address-space limit (a malloc arena and a stack):
    a program near its limit failed with MemoryError where it had run."""
    program = ("chunks = []\ntry:\n    while True:\n        chunks.append(bytearray(8 << 20))\n"
               "except MemoryError:\n    print(len(chunks) * 8)\n")
    run = run_python(program, timeout_s=30, memory_bytes=256 << 20)
    assert run.returncode == 0 and int(run.stdout) >= 224, run  # MiB: all but what Python itself takes
