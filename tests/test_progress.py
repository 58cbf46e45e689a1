"""Progress off a terminal: lines, not carriage-return redraws, and few of them."""

import io
import sys

from fourdhands import progress


class _Pipe(io.StringIO):
    def isatty(self):
        return False


def test_off_a_terminal_a_bar_prints_a_few_whole_lines(monkeypatch):
    pipe = _Pipe()
    monkeypatch.setattr(sys, "stderr", pipe)
    bar = progress.progress_bar(total=5000, unit="frame", desc="clip")
    for _ in range(5000):  # far quicker than LOG_INTERVAL: only the first and the last line
        bar.update(1)
    bar.close()
    text = pipe.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert 1 <= len(lines) <= 3, lines
    assert lines[-1].startswith("clip: 100%") and "5000/5000" in lines[-1]


def test_on_a_terminal_it_is_tqdms_own_bar(monkeypatch):
    class Tty(_Pipe):
        def isatty(self):
            return True

    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    bar = progress.progress_bar(total=3, file=tty)
    bar.update(3)
    bar.close()
    assert "\r" in tty.getvalue()
