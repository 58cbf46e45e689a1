"""Progress bars for long work: tqdm on a terminal; elsewhere (CI, a log file) a plain line
every :data:`LOG_INTERVAL` seconds instead of hundreds of carriage-return updates."""

from __future__ import annotations

import sys

LOG_INTERVAL = 5.0  # seconds between lines when stderr is not a terminal


class _Lines:
    """A stream for tqdm that turns each redraw (``\\r`` + the bar) into one line."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").replace("\x1b[A", "").strip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(**options):
    """A tqdm bar on stderr (``options`` as tqdm's: ``total``, ``unit``, ``desc``, ``initial``,
    or an iterable); off a terminal it prints a line every few seconds and at the end."""
    from tqdm import tqdm

    if sys.stderr.isatty():
        return tqdm(dynamic_ncols=True, **options)
    return tqdm(file=_Lines(sys.stderr), mininterval=LOG_INTERVAL, maxinterval=LOG_INTERVAL, ascii=True, ncols=100,
                **options)
