"""Atomic writes: the old version survives a failure, and new files follow the umask."""

from __future__ import annotations

import os
import stat

import pytest

from bench import atomic


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o007, 0o660), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    assert atomic.current_umask() == mask
    writers = {"a.txt": lambda p: atomic.write_text(p, "x"), "b.bin": lambda p: atomic.write_bytes(p, b"x"),
               "c.json": lambda p: atomic.write_json(p, {"x": 1}), "d.pt": lambda p: atomic.torch_save(p, {"x": 1})}
    for name, write in writers.items():
        write(tmp_path / name)
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    atomic.write_text(tmp_path / "a.txt", "rewritten")  # replacing keeps the umask's mode too
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == mode


def test_failed_write_keeps_the_previous_version(tmp_path):
    path = tmp_path / "r.json"
    atomic.write_text(path, "old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.json"]
