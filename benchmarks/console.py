"""Progress lines for the person running the benchmarks, kept apart from the operators' task logs.

:func:`redirect_stdout_to` points file descriptor 1 at a log file (the operators' log lines, and the output of
the CLI tools they run, land there, as in a task's log); :func:`say` keeps writing to the terminal.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

_console: TextIO | None = None


def say(message: str) -> None:
    """Print a progress line on the terminal (even after stdout went to the log).

    :param message: the line.
    """
    stream = _console or sys.stdout
    stream.write(message + "\n")
    stream.flush()


def redirect_stdout_to(path: Path) -> Path:
    """Send everything written to stdout (fd 1) from now on to ``path``; :func:`say` still reaches the terminal.

    :param path: the log file (appended to).
    """
    global _console
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    if _console is None:
        _console = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.close(log)
    return path
