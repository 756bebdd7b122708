"""What the commands print with: the shared stdout and stderr consoles, the progress bar and the
one-line warning."""

from __future__ import annotations

from typing import Any

from rich.console import Console

# markup and emoji off: what is printed is text. A tier named "[small]" or a path with "[old]" in it
# is not a style tag, and ":100:" in an answer is not a picture; styles are given as style=
out = Console(highlight=False, soft_wrap=True, emoji=False, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False, markup=False)


def _progress_bar(total_label: str) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn(total_label.replace("{", "{{").replace("}", "}}"), style="bold", markup=False),
                    BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                    TextColumn("{task.description}", markup=False), console=err)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    err.print(f"warning: {message}", markup=False, style="yellow")
