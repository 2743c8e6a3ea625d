"""A one-line progress bar for long work on a terminal: ``replaying [#####.....] 52% 520,000/1,000,000``."""

from __future__ import annotations

import time
from typing import TextIO


class ProgressBar:
    """Redrawn in place at most ten times a second; the caller makes one only when ``out`` is a terminal."""

    WIDTH = 30

    def __init__(self, label: str, out: TextIO) -> None:
        self._label = label
        self._out = out
        self._drawn_at = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._drawn_at < 0.1 and done < total:
            return
        self._drawn_at = now
        fraction = done / total if total else 1.0
        filled = int(fraction * self.WIDTH)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self._out.write(f"\r{self._label} [{bar}] {fraction:4.0%} {done:,}/{total:,}")
        self._out.flush()

    def stage(self, label: str, done: int, total: int) -> None:
        """Progress of work done in stages, each named on the bar as it starts."""
        label = label.ljust(len(self._label))  # a shorter name still covers the one before it
        if label != self._label:
            self._label = label
            self._drawn_at = 0.0
        self(done, total)

    def close(self) -> None:
        self._out.write("\n")
        self._out.flush()
