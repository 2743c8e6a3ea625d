"""The initial index's progress bar on a terminal (rich), with files per second; nothing when not a terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn


@contextmanager
def progress_bar(total: int, *, enabled: bool) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(files)``; draws on stderr only when ``enabled`` and there is work to show."""
    if not enabled or total == 0:
        yield lambda files: None
        return
    columns = (
        TextColumn("indexing"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("index", total=total, rate="")

        def advance(files: int) -> None:
            speed = progress.tasks[0].speed
            progress.update(task, advance=files, rate=f"{speed:.0f} files/s" if speed else "")

        yield advance
