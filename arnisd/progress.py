"""A progress display on stderr: one line per phase, redrawn in place on a terminal."""

from __future__ import annotations

import sys
import time


class Progress:
    """Counts work done in named phases and shows rate and ETA; silent when ``quiet``."""

    def __init__(self, quiet: bool = False, stream=None, min_interval_s: float = 0.5):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.min_interval_s = min_interval_s if self.tty else 5.0
        self.phase = ""
        self.total = 0
        self.done = 0
        self.unit = ""
        self._start = 0.0
        self._last_draw = 0.0

    def start(self, phase: str, total: int, unit: str = "") -> None:
        self.finish()
        self.phase, self.total, self.done, self.unit = phase, total, 0, unit
        self._start = self._last_draw = time.monotonic()
        self._draw(force=True)

    def advance(self, amount: int = 1) -> None:
        self.done += amount
        self._draw()

    def set(self, done: int) -> None:
        self.done = done
        self._draw()

    def note(self, message: str) -> None:
        """A one-off line (e.g. where the world went)."""
        if not self.quiet:
            self._end_line()
            print(message, file=self.stream, flush=True)

    def finish(self) -> None:
        if self.phase:
            self._draw(force=True, final=True)
            self.phase = ""

    def _end_line(self) -> None:
        if self.tty and self.phase:
            self.stream.write("\n")

    def _draw(self, force: bool = False, final: bool = False) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < self.min_interval_s:
            return
        self._last_draw = now
        elapsed = max(now - self._start, 1e-9)
        rate = self.done / elapsed
        if self.total:
            pct = 100.0 * self.done / self.total
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            eta_text = f", ETA {eta:.0f}s" if self.done < self.total and rate > 0 else ""
            line = (f"{self.phase}: {self.done}/{self.total} {self.unit} ({pct:.0f}%, "
                    f"{rate:.0f} {self.unit}/s{eta_text})")
        else:
            line = f"{self.phase}: {self.done} {self.unit}"
        if final:
            line += f" in {elapsed:.1f}s"
        if self.tty:
            self.stream.write("\r\x1b[2K" + line + ("\n" if final else ""))
            self.stream.flush()
        else:
            print(line, file=self.stream, flush=True)


class LogProgress:
    """``Progress``'s interface for a daemon: phases and notes go to a logger, at most one
    progress line per ``interval_s`` (the daemon has no terminal to redraw)."""

    def __init__(self, logger, prefix: str = "", interval_s: float = 10.0):
        self.logger, self.prefix, self.interval_s = logger, prefix, interval_s
        self.phase, self.unit, self.done = "", "", 0
        self._start = self._last = 0.0

    def start(self, phase: str, total: int = 0, unit: str = "") -> None:
        self.phase, self.unit, self.done = phase, unit, 0
        self._start = self._last = time.monotonic()
        self.logger.info("%s%s", self.prefix, phase)

    def set(self, done: int) -> None:
        self.done = done
        if time.monotonic() - self._last >= self.interval_s:
            self._last = time.monotonic()
            self.logger.info("%s%s: %d %s", self.prefix, self.phase, done, self.unit)

    def advance(self, amount: int = 1) -> None:
        self.set(self.done + amount)

    def note(self, message: str) -> None:
        self.logger.info("%s%s", self.prefix, message)

    def finish(self) -> None:
        if self.phase:
            self.logger.info("%s%s: %d %s in %.1fs", self.prefix, self.phase, self.done,
                             self.unit, time.monotonic() - self._start)
            self.phase = ""
