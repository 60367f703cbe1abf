"""Advisory fcntl locks on files: the one helper behind run locks (bench.harness.runs), a sweep's
manifest and submission locks (bench.harness.manifest) and synthetic data generation
(bench.data.synth.generate).

A lock may carry a holder record (JSON written into the locked file while held, emptied on
release), so another process can say who holds it; ``held`` probes with a shared lock, so two
probes never see each other.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any


class FileLock:
    """An exclusive lock on ``path`` (created if missing). ``with FileLock(p):`` blocks until held."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None
        self._recorded = False

    def acquire(self, wait_s: float | None = None, poll_s: float = 0.05, record: dict | None = None) -> bool:
        """Take the lock, waiting up to ``wait_s`` seconds (None: as long as it takes); False when
        another process still holds it then. ``record``: written into the file once held."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _lock(fd, wait_s, poll_s):
            os.close(fd)
            return False
        self._fd = fd
        if record is not None:
            os.ftruncate(fd, 0)
            os.write(fd, (json.dumps(record) + "\n").encode())
            self._recorded = True
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        if self._recorded:
            os.ftruncate(self._fd, 0)  # nobody holds it any more
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd, self._recorded = None, False

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _lock(fd: int, wait_s: float | None, poll_s: float) -> bool:
    if wait_s is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)


def held(path: Path) -> bool:
    """Whether some process holds an exclusive lock on ``path`` right now."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def holder(path: Path) -> dict[str, Any] | None:
    """The holder record written into a lock file, or None (empty, unreadable, not a record)."""
    try:
        record = json.loads(Path(path).read_text() or "null")
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
