"""Run untrusted Python (model-written code) in a separate, killable process.

Used by the HumanEval grader, the prompt-examples check and the cross-check of math drafts. Each
program runs in a fresh ``python -I`` process, in its own session (when it ends or times out, its
process group is killed, and with it every process it spawned that stayed in that group), in a
throw-away working directory, with stdin closed, a minimal environment (API keys are not passed
down), a wall-clock timeout and, on POSIX, address-space (memory), file-size and CPU-time limits (the
CPU time a generous multiple of the timeout: what stops a busy loop whose parent was killed before
its timeout came). A program whose parent goes away (killed, its terminal closed) kills its own
process group within a fraction of a second: in a session of its own, no signal to the parent's
group reaches it. That is containment against accidents
(infinite loops, ``os._exit``, runaway memory), not a security sandbox against hostile code: a child
that starts a session or a process group of its own (``os.setsid()``, ``os.setpgrp()``,
``subprocess.Popen(..., start_new_session=True)`` or ``process_group=0``) leaves the process group
and escapes the kill; the program runs as the same user, with the network
and the files that user has, and on Linux it could read the parent's environment from ``/proc``.
Run the checks that execute code only on traffic you trust, or run the whole process isolated (a
container, a user with no secrets).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

_TAIL = 2000
#: run first, in a function of its own, so the program finds none of its names (``resource``)
_LIMITS = """\
def __edgecascade_limits():
    import os
    try:  # the program's file goes before any of its code runs: a check's token must not be read from it
        os.unlink(__file__)
    except OSError:
        pass
    if hasattr(os, "killpg"):  # the parent gone (killed, its terminal closed): nothing waits for this any more
        import signal, threading, time
        parent = os.getppid()

        def watch():
            while os.getppid() == parent:
                time.sleep(0.2)
            os.killpg(0, signal.SIGKILL)

        threading.stack_size(1 << 16)  # a small stack: the memory limit is the program's, not the watch's
        threading.Thread(target=watch, daemon=True).start()
        threading.stack_size(0)
    try:
        import resource
    except ImportError:
        return
    # each limit on its own, within what the parent allows: one that cannot be raised to its value
    # (a lower inherited hard limit) must not cost the other
    for lim, val in ((resource.RLIMIT_AS, {mem}), (resource.RLIMIT_FSIZE, 1 << 24), (resource.RLIMIT_CPU, {cpu})):
        try:
            hard = resource.getrlimit(lim)[1]
            if hard != resource.RLIM_INFINITY:
                val = min(val, hard)
            resource.setrlimit(lim, (val, val))
        except (ValueError, OSError):
            pass
__edgecascade_limits()
del __edgecascade_limits
"""


@dataclass(frozen=True)
class Run:
    returncode: int | None  # None: killed at the timeout
    stdout: str  # the last ~2 kB
    stderr: str

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def run_python(source: str, *, timeout_s: float = 10.0, memory_bytes: int = 2 << 30) -> Run:
    """Run ``source`` as a program in its own process and return its exit code and output tails."""
    # CPU seconds: a multiple of the timeout (threads may use several cores while the clock runs),
    # so only a program nothing stops any more meets it
    program = _LIMITS.format(mem=int(memory_bytes), cpu=4 * math.ceil(timeout_s) + 5) + source
    with tempfile.TemporaryDirectory(prefix="edgecascade-run-", ignore_cleanup_errors=True) as tmp:
        out_path, err_path = Path(tmp) / ".stdout", Path(tmp) / ".stderr"
        prog = Path(tmp) / "program.py"  # a file, not -c: no limit on a single argument's length
        prog.write_text(program, encoding="utf-8")
        with out_path.open("wb") as out, err_path.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-I", str(prog)],
                cwd=tmp, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
                env=_minimal_env(),  # API keys and the rest of the environment are not passed down
            )
            try:
                rc: int | None = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                rc = None
            finally:
                _kill_group(proc)
        return Run(rc, _tail(out_path), _tail(err_path))


def _minimal_env() -> dict[str, str]:
    keep = ("PATH", "SYSTEMROOT", "TMPDIR", "TEMP", "TMP")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["LANG"] = env["LC_ALL"] = "C.UTF-8"
    env["PYTHONIOENCODING"] = "utf-8"
    # one malloc arena: a second thread (the parent watch) would otherwise reserve 64 MiB of the
    # program's address-space limit
    env["MALLOC_ARENA_MAX"] = "1"
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if hasattr(os, "killpg"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _tail(path: Path, n: int = _TAIL) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(size - n, 0))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
