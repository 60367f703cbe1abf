"""Compiled CPU kernels, built on first use: the renderer's (render_cpu.cpp: tiles, compositing;
project_cpu.cpp: EWA projection) and the method's hot loops (render_cpu.cpp: per-pixel blur
kernels, BP-Net's head activations; motion_cpu.cpp: the motion-basis transform; ssim_cpu.cpp: the
SSIM loss).

`load()` compiles the extension with torch.utils.cpp_extension the first time it is needed and
caches it in torch's extensions directory ($TORCH_EXTENSIONS_DIR, default
~/.cache/torch_extensions); later processes reuse the build. torch's loader holds a file lock in
the build directory, so concurrent first uses build once and the others wait. Where the build
fails (no compiler, no ninja), one warning says so and the pure-PyTorch path runs.
`BENCH_RENDER_COMPILED=0` forces the pure-PyTorch path; `use_compiled(False)` does the same
in-process.

The float32 kernels are compiled for AVX-512, for AVX2 + FMA and for the compiler's baseline
target; the module picks the best this CPU runs. `BENCH_RENDER_ISA=avx2` (or avx512, base) or
`use_isa("avx2")` picks one by hand, for tests and comparisons; each gives bit-identical results
run to run and across thread counts, and they differ from each other by float rounding (FMA).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from bench.errors import BenchError

SOURCES = [Path(__file__).with_name(name) for name in ("render_cpu.cpp", "project_cpu.cpp",
                                                            "motion_cpu.cpp", "ssim_cpu.cpp")]
HEADERS = [Path(__file__).with_name(name) for name in ("composite_vec.h", "method_vec.h")]
ENV = "BENCH_RENDER_COMPILED"
ISA_ENV = "BENCH_RENDER_ISA"
ISAS = ("auto", "avx512", "avx2", "base")
NAME = "bench_render_cpu"

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_module = None
_failed: str | None = None
_isa: str | None = None  # the instruction set the float32 kernels run (set_isa's answer)
_enabled: bool | None = None  # None: follow the environment variable


def use_compiled(enabled: bool | None) -> None:
    """Force the compiled path on (True) or off (False) in this process; None follows $BENCH_RENDER_COMPILED."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    """Whether the compiled path is wanted (it may still be unavailable, see `load`)."""
    return _enabled if _enabled is not None else wanted_in(os.environ)


def wanted_in(env) -> bool:
    """Whether the environment ``env`` (a mapping) asks for the compiled path: $BENCH_RENDER_COMPILED
    unset or not 0/false/no/off."""
    return env.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def load():
    """The compiled module, building it on first use; None where it cannot be built."""
    global _module, _failed, _isa
    if _module is not None or _failed is not None:
        return _module
    with _lock:
        if _module is None and _failed is None:
            isa = _requested_isa()
            try:
                module = _build()
            except Exception as err:  # any build or import failure falls back to the torch path
                _failed = f"{type(err).__name__}: {str(err).strip().splitlines()[-1] if str(err).strip() else ''}"
                _log.warning("bench.render: compiled CPU kernels unavailable (%s); using the "
                             "pure-PyTorch renderer", _failed)
                return None
            if isa not in ("auto", *module.supported_isas()):
                raise BenchError(f"{ISA_ENV}={isa}: this CPU does not run it; it runs "
                                 f"{', '.join(module.supported_isas())} (or auto)")
            _isa = module.set_isa(isa)
            _module = module
    return _module


def _requested_isa() -> str:
    """$BENCH_RENDER_ISA, checked: auto (default) or an instruction set's name."""
    isa = os.environ.get(ISA_ENV, "auto").strip().lower() or "auto"
    if isa not in ISAS:
        raise BenchError(f"{ISA_ENV}={isa!r}: expected one of {', '.join(ISAS)}")
    return isa


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
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in [*SOURCES, *HEADERS])).hexdigest()[:16]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no CUDA runtime" and similar notes are irrelevant here
        return cpp_extension.load(
            name=NAME, sources=[str(p) for p in SOURCES],
            # fp-contract off: the forward and backward pass must round alpha identically
            extra_cflags=["-O3", "-ffp-contract=off", f"-DBENCH_SOURCE_HASH={digest}"], verbose=False)


def isas() -> list[str]:
    """Instruction sets of the float32 kernels that this CPU runs, best first ([] without a build)."""
    module = load()
    return list(module.supported_isas()) if module is not None else []


def use_isa(name: str) -> str:
    """Run the float32 kernels with instruction set `name` ("auto", "avx512", "avx2", "base");
    returns the one in use. Raises RuntimeError for one this CPU cannot run or without a build."""
    global _isa
    module = load()
    if module is None:
        raise RuntimeError(f"compiled CPU kernels unavailable: {_failed}")
    _isa = module.set_isa(name)
    return _isa


def active_isa() -> str | None:
    """The instruction set the float32 kernels run now ("avx512", "avx2", "base"); None without a build."""
    return _isa if load() is not None else None


def failure() -> str | None:
    """Why the build failed, or None."""
    return _failed


def active_path() -> str:
    """"compiled" when CPU renders use the compiled kernels, else "torch" (builds on first call)."""
    return "compiled" if enabled() and load() is not None else "torch"
