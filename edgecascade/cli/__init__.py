"""The `edgecascade` command: run a question through a cascade, manage local models, benchmark.

The answer goes to stdout and the account of how it was reached to stderr, so
``edgecascade run "..." > answer.txt`` keeps only the answer; ``--json`` prints one JSON object.

Here: :func:`main`, which parses the command line (:mod:`.parser`), calls the command and turns its
errors into messages and exit codes. Each command is a module of its own: :mod:`.run`,
:mod:`.models`, :mod:`.bench` (overhead, run, replay), :mod:`.bench_report` (report, reliability),
:mod:`.calibrate` and :mod:`.adapt` (``calibrate --adapt``); :mod:`.bench_traces` holds what the
benchmark commands share and :mod:`.console` what they all print with.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

from .. import strict_json
from ..errors import ConfigError, EdgecascadeError, InvalidRequestError
from .console import _show_warning, err
from .parser import build_parser
from .run import _print_error_json, _print_interrupted_account

__all__ = ["build_parser", "main"]


def _check_out(args: argparse.Namespace) -> None:
    """Refuse where a command would write, given (--out, --traces) or by default, when it cannot be
    written, before the work it would hold (a report or a fit takes minutes). A given --out is made
    if missing; a default place is only checked (nothing is made for a mistyped input's sake)."""
    given = getattr(args, "out", None)
    bench = getattr(args, "bench", None)
    if args.command == "bench" and bench == "run":  # traces are appended as they are made
        from ..benchmarks.traces import traces_dir

        folder = Path(args.traces) if getattr(args, "traces", None) else traces_dir()
        # only where a file is in the way: a rerun whose traces are all there writes nothing, and may
        # read a folder it cannot write in
        given_traces = getattr(args, "traces", None)
        _not_a_file(folder, f"--traces {given_traces}" if given_traces else f"the traces folder {folder}")
        return
    if args.command == "calibrate":  # a file
        if given:
            path = Path(given).expanduser()
            if path.is_dir():
                raise ConfigError(f"--out {given} is a folder: name the calibration file to write, e.g. "
                                  f"{path / 'mine.calibration.json'}")
            _writable_folder(path.parent, f"--out {given}")
            return
        traces = [Path(t).expanduser() for t in getattr(args, "traces", None) or []]
        if not traces or not traces[0].is_file():  # the command says what is wrong with its input
            return
        suffix = ".adapted.calibration.json" if getattr(args, "adapt", None) else ".calibration.json"
        path = traces[0].with_suffix(suffix)
        if path.is_dir():
            raise ConfigError(f"{path}, where the calibration would go (beside --traces), is a folder: name the file "
                              "to write with --out")
        _writable_folder(path.parent, f"the folder of {path}", make=False)
        return
    if args.command == "bench" and bench in ("report", "reliability"):
        from ..benchmarks.traces import results_dir

        if given:
            _writable_folder(Path(given).expanduser(), f"--out {given}")
        else:
            folder = results_dir(getattr(args, "traces", None))
            _writable_folder(folder, f"the results folder {folder} (or name one with --out)", make=False)
        return
    if given:  # a folder, made if missing
        _writable_folder(Path(given).expanduser(), f"--out {given}")


def _not_a_file(folder: Path, name: str) -> Path | None:
    """A ConfigError when ``folder``, or a folder above it, is a file; else the nearest of them that
    exists (None when none does)."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{name} is a file: name a folder")
    above = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if above is not None and not above.is_dir():
        raise ConfigError(f"{name} lies under {above}, which is a file, not a folder: name another path")
    return above


def _writable_folder(folder: Path, name: str, *, make: bool = True) -> None:
    """``folder`` (made if missing, with ``make``) can be written in now, or a ConfigError says why not.
    Without ``make`` the nearest folder that exists is checked, and nothing is created."""
    above = _not_a_file(folder, name)
    if not make:
        if above is not None and not os.access(above, os.W_OK | os.X_OK):
            raise ConfigError(f"{name}: cannot write in {above}: name a folder you can write in")
        return
    try:  # written to now, not after the minutes of work (a folder without rights, a read-only disk)
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise ConfigError(f"{name}: cannot write in {folder} ({e.strerror or e}): name a folder you can "
                          "write in") from None


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: the reader left, and the flush at exit must not fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the command's own parser, with its usage (the top one's said nothing useful)
        given = list(sys.argv[1:] if argv is None else argv)
        command = getattr(args, "command", None)
        before = given[:given.index(command)] if command in given else []
        sub = getattr(args, "usage_parser", parser)
        early = [a for a in extra if a in before and a.split("=")[0] in sub._option_string_actions]
        if early:  # `edgecascade --json run ...`: the option is the command's, in the wrong place
            sub.error(f"{' '.join(early)} goes after the command: {sub.prog} {' '.join(early)} ...")
        getattr(args, "usage_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):  # no command: a usage error, said on stderr
        parser.print_help(sys.stderr)
        return 2
    if sys.stdout is None and args.command == "run":  # `run q >&-`: the answer would be paid for, with nowhere to go
        err.print("error: stdout is closed: give the command somewhere to write (a file, a pipe)", markup=False)
        return 2
    try:
        try:
            _check_out(args)
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning  # a user reads "warning: ...", not a source file and line
                return int(args.func(args))
        except BrokenPipeError:  # `edgecascade run ... | head`: the reader left; nothing to say to it
            _quiet_stdout()
            return 0
        except OSError as e:  # a file named on the command line that cannot be read or written: a folder, no rights
            raise ConfigError(f"{e}: check the path given") from None
    except EdgecascadeError as e:
        err.print(f"error: {e}", markup=False)
        try:
            if args.command == "run" and args.json:  # a script reading stdout gets an object too
                _print_error_json(e, args)
            elif getattr(args, "json", False):  # so does one reading any other command's --json
                print(strict_json.dumps({"error": {"type": type(e).__name__, "message": str(e)}},
                                        ensure_ascii=False))
            sys.stdout.flush()
        except (BrokenPipeError, AttributeError):  # the reader left, or stdout is closed: said on stderr
            _quiet_stdout()
        return 2 if isinstance(e, (ConfigError, InvalidRequestError)) else 1
    except KeyboardInterrupt as e:
        resumes = args.command == "bench" and args.bench == "run"
        err.print("interrupted" + (": every trace written so far is kept; run the same command again to go on"
                                   if resumes else ""))
        if args.command == "run":  # what the query had spent is said, and recorded for a script
            _print_interrupted_account(e, args)
        return 130
