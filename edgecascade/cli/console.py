"""What the commands print with: the shared stdout and stderr consoles, the progress bar and the
one-line warning."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console


class _Console(Console):
    """rich's console, except that a reader who left (`edgecascade models list | head -1`) is what
    ``main`` says it is, exit 0, as for the plain prints: rich's own answer exits 1, which fails a
    `set -o pipefail` script for a table it read what it wanted of."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError(32, "Broken pipe")


# markup and emoji off: what is printed is text. A tier named "[small]" or a path with "[old]" in it
# is not a style tag, and ":100:" in an answer is not a picture; styles are given as style=
out = _Console(highlight=False, soft_wrap=True, emoji=False, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False, markup=False)


def progress_bar(total_label: str) -> Any:
    """A rich progress bar on stderr; where stderr is not a terminal (a log file, `nohup`, CI) a live
    bar draws nothing until the end, so there it writes a plain line as the work moves instead (at
    most one every `_LOG_EVERY_S` seconds, and the last), so a long run's log says how far it got."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    class _LoggedProgress(Progress):
        def __init__(self, *columns: Any, **kwargs: Any) -> None:
            super().__init__(*columns, **kwargs)
            self._logged: dict[TaskID, tuple[float, float]] = {}  # task -> (completed, when) last written

        def update(self, task_id: TaskID, **kwargs: Any) -> None:
            super().update(task_id, **kwargs)
            self._log(task_id)

        def advance(self, task_id: TaskID, advance: float = 1) -> None:
            super().advance(task_id, advance)
            self._log(task_id)

        def _log(self, task_id: TaskID) -> None:
            if self.console.is_terminal:
                return
            task = self._tasks[task_id]
            done, when = self._logged.get(task_id, (0.0, float("-inf")))
            now = time.monotonic()
            if task.completed == done or (now - when < _LOG_EVERY_S and not task.finished):
                return
            self._logged[task_id] = (task.completed, now)
            of = f"/{task.total:.0f}" if task.total is not None else ""
            self.console.print(f"{total_label} {task.completed:.0f}{of} {task.description}".rstrip(),
                               markup=False, highlight=False)

    return _LoggedProgress(TextColumn(total_label.replace("{", "{{").replace("}", "}}"), style="bold", markup=False),
                           BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                           TextColumn("{task.description}", markup=False), console=err)


#: where a progress bar cannot be drawn, the least time between two lines it writes instead
_LOG_EVERY_S = 2.0


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    err.print(f"warning: {message}", markup=False, style="yellow")
