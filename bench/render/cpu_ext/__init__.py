"""Compiled CPU kernels of the renderer (render_cpu.cpp), built on first use.

`load()` compiles the extension with torch.utils.cpp_extension the first time it is needed and
caches it in torch's extensions directory ($TORCH_EXTENSIONS_DIR, default
~/.cache/torch_extensions); later processes reuse the build. torch's loader holds a file lock in
the build directory, so concurrent first uses build once and the others wait. Where the build
fails (no compiler, no ninja), one warning says so and the pure-PyTorch path runs.
`BENCH_RENDER_COMPILED=0` forces the pure-PyTorch path; `use_compiled(False)` does the same
in-process.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

SOURCE = Path(__file__).with_name("render_cpu.cpp")
HEADERS = [Path(__file__).with_name("composite_vec.h")]
ENV = "BENCH_RENDER_COMPILED"
NAME = "bench_render_cpu"

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_module = None
_failed: str | None = None
_enabled: bool | None = None  # None: follow the environment variable


def use_compiled(enabled: bool | None) -> None:
    """Force the compiled path on (True) or off (False) in this process; None follows $BENCH_RENDER_COMPILED."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    """Whether the compiled path is wanted (it may still be unavailable, see `load`)."""
    if _enabled is not None:
        return _enabled
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def load():
    """The compiled module, building it on first use; None where it cannot be built."""
    global _module, _failed
    if _module is not None or _failed is not None:
        return _module
    with _lock:
        if _module is None and _failed is None:
            try:
                _module = _build()
            except Exception as err:  # any build or import failure falls back to the torch path
                _failed = f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"
                _log.warning("bench.render: compiled CPU kernels unavailable (%s); using the "
                             "pure-PyTorch renderer", _failed)
    return _module


def _build():
    import warnings

    # importing cpp_extension logs "No CUDA runtime is found" on CPU machines: not news here
    quiet = logging.getLogger("torch.utils.cpp_extension")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        from torch.utils import cpp_extension
    finally:
        quiet.setLevel(level)
    import hashlib

    # torch rebuilds when the sources or flags change; the header (found next to the .cpp, so no
    # include path that would make checkouts with the same sources rebuild in turn) is neither,
    # so its hash is a flag
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in [SOURCE, *HEADERS])).hexdigest()[:16]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no CUDA runtime" and similar notes are irrelevant here
        return cpp_extension.load(
            name=NAME, sources=[str(SOURCE)],
            # fp-contract off: the forward and backward pass must round alpha identically
            extra_cflags=["-O3", "-ffp-contract=off", f"-DBENCH_SOURCE_HASH={digest}"], verbose=False)


def failure() -> str | None:
    """Why the build failed, or None."""
    return _failed


def active_path() -> str:
    """"compiled" when CPU renders use the compiled kernels, else "torch" (builds on first call)."""
    return "compiled" if enabled() and load() is not None else "torch"
