"""gsplat's CUDA extension: load it, or build it once, and say in one line why it cannot.

gsplat 1.5.3 from the package index ships CUDA sources, not binaries (a wheel built from source has
``gsplat.csrc`` instead). The first ``import gsplat.cuda._backend`` JIT-compiles them through
``torch.utils.cpp_extension`` with nvcc, a C++ compiler and ninja (minutes) into the build directory
``$TORCH_EXTENSIONS_DIR/gsplat_cuda`` (unset: ``~/.cache/torch_extensions/py311_cu130/gsplat_cuda``).
Later imports load ``gsplat_cuda.so`` but still run ninja (a no-op when nothing changed), so nvcc and
ninja are needed every time. Environment read by gsplat and torch: ``TORCH_CUDA_ARCH_LIST`` (default:
the visible GPUs; with none visible it must be set, e.g. "9.0" for H100/H200), ``MAX_JOBS`` (parallel
compiles, gsplat's default 10), ``CUDA_HOME``, ``CXX``, ``FAST_COMPILE``, ``NO_FAST_MATH``, ``VERBOSE``.
Changing the arch list or the toolkit makes ninja recompile everything.

Concurrent first imports are not safe: torch serialises builds with an advisory file lock on
``<build dir>/lock``, but gsplat's import deletes that file before torch takes the lock (and deletes
the whole build directory while no ``.so`` exists), so a second process locks a fresh file and
compiles into the same folder at once. Build once before starting many processes
(``bench doctor --build-gsplat``; ``bench sweep`` does it before a SLURM array, see
:mod:`bench.harness.gsplat_build`).
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Iterator

from bench.errors import BenchError

NAME = "gsplat_cuda"
# Written beside the .so after a successful load: what the build was made for (see bench.harness.gsplat_build).
MARKER = "bench_build.json"
# Lines of compiler/linker output that state a cause ("a.cu(12): error: ...", "nvcc fatal : ...",
# "ld: cannot find -lcudart" before the less telling "collect2: error: ld returned 1").
CAUSE = re.compile(r"\b(error|fatal|cannot find|undefined reference)\b", re.IGNORECASE)


@dataclass(frozen=True)
class ExtensionStatus:
    """The outcome of loading (or building) gsplat's CUDA extension."""

    ok: bool
    reason: str  # one line naming what is missing or what failed; "" when ok
    seconds: float  # time the load (and any build) took
    build_dir: str | None  # where the extension is (or would be) built; None before that is known
    compiled: bool  # True when no built extension existed before this load
    needs_build: bool = False  # not built yet, and the caller asked not to build it

    def summary(self) -> str:
        """One line: how it loaded (where, how long) or why it did not."""
        if not self.ok:
            return self.reason
        return f"{'built' if self.compiled else 'loaded'} in {self.seconds:.1f} s from {self.build_dir}"


def precompiled() -> bool:
    """Whether gsplat was installed with its extension compiled (``gsplat.csrc``), needing no toolkit."""
    try:
        return importlib.util.find_spec("gsplat.csrc") is not None
    except ModuleNotFoundError:  # gsplat itself is not installed
        return False


def device_problem(need_device: bool) -> str | None:
    """Why this torch cannot run (``need_device``) or build gsplat's kernels, or None."""
    import torch

    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build (install a CUDA build of torch)"
    if torch.cuda.is_available():
        return None
    if need_device:
        return "no CUDA device visible (torch.cuda.is_available() is False)"
    if not os.environ.get("TORCH_CUDA_ARCH_LIST"):
        # torch derives the target from the visible GPUs; with none it fails with an IndexError.
        return ("no CUDA device to build for: set TORCH_CUDA_ARCH_LIST "
                "(e.g. 9.0 for H100/H200) to build without a GPU")
    return None


def nvcc_version(nvcc: str) -> str | None:
    """``nvcc --version``'s release ("13.0"), or None when it does not run."""
    try:
        out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"release (\d+\.\d+)", out)
    return match.group(1) if match else None


def find_nvcc() -> tuple[str | None, str | None]:
    """(CUDA_HOME, nvcc path) as torch's extension builder finds them; nvcc None when it is not there."""
    with _quiet_cpp_extension():
        from torch.utils import cpp_extension
    home = cpp_extension.CUDA_HOME
    if not home:
        return None, None
    nvcc = os.path.join(home, "bin", "nvcc")
    return home, nvcc if os.path.isfile(nvcc) else None


def toolchain_problem() -> str | None:
    """What the JIT build is missing (CUDA toolkit, nvcc, a matching CUDA, C++ compiler, ninja), or None."""
    import torch

    home, nvcc = find_nvcc()
    if home is None:
        return ("CUDA toolkit not found: no nvcc on PATH, CUDA_HOME unset, no /usr/local/cuda "
                "(load a CUDA module or set CUDA_HOME)")
    if nvcc is None:
        return f"nvcc not found: {home}/bin/nvcc does not exist (CUDA_HOME={home} is not a CUDA toolkit)"
    problem = toolkit_files_problem(home)
    if problem:
        return problem
    found = nvcc_version(nvcc)
    if found is None:
        return f"{nvcc} --version does not run or names no release"
    if found.split(".")[0] != str(torch.version.cuda).split(".")[0]:
        return (f"nvcc {found} ({nvcc}) does not match torch's CUDA {torch.version.cuda}: "
                f"load a CUDA {str(torch.version.cuda).split('.')[0]}.x toolkit or set CUDA_HOME")
    cxx = os.environ.get("CXX", "c++")  # torch's get_cxx_compiler()
    if shutil.which(cxx) is None:
        return f"no C++ compiler: {cxx} not on PATH (load a gcc module or set CXX)"
    if shutil.which("ninja") is None:
        return "ninja not found on PATH (pip install ninja)"
    return None


def toolkit_files_problem(home: str) -> str | None:
    """Headers and runtime library where torch will look for them (-I<home>/include, -L<home>/lib64 or lib).

    CUDA_HOME derived from an nvcc wrapper on PATH (e.g. /usr/local/bin/nvcc -> /usr/local) passes
    the nvcc check but fails minutes into the build on "cuda_runtime.h: No such file or directory".
    """
    fix = f"CUDA_HOME={home} is not the toolkit's root; set CUDA_HOME, e.g. to /usr/local/cuda"
    # torch adds <home>/include and $CUDA_INC_PATH; the C++ compiler also searches CPATH, CPLUS_INCLUDE_PATH.
    extra = ":".join(os.environ.get(v, "") for v in ("CUDA_INC_PATH", "CPATH", "CPLUS_INCLUDE_PATH"))
    includes = [os.path.join(home, "include"), *extra.split(":")]
    if not any(os.path.isfile(os.path.join(d, "cuda_runtime.h")) for d in includes if d):
        return f"CUDA headers not found: no {home}/include/cuda_runtime.h ({fix})"
    if home != "/usr":  # Debian's packages: the system linker path holds libcudart
        lib = "lib64" if os.path.isdir(os.path.join(home, "lib64")) else "lib"  # torch's choice
        if not glob.glob(os.path.join(home, lib, "libcudart.so*")):
            return f"CUDA runtime library not found: no {home}/{lib}/libcudart.so ({fix})"
    return None


def build_dir() -> Path:
    """Where torch builds (and looks for) the extension, for the current TORCH_EXTENSIONS_DIR."""
    with _quiet_cpp_extension():
        from torch.utils.cpp_extension import _get_build_directory  # what gsplat itself calls

    return Path(_get_build_directory(NAME, verbose=False))


def is_built(path: Path) -> bool:
    return (path / f"{NAME}.so").is_file()


@functools.cache
def ensure_extension(*, build: bool = True, need_device: bool = True) -> ExtensionStatus:
    """Load gsplat's CUDA extension, compiling it first when ``build`` and it is not built yet.

    ``need_device=False`` allows building on a machine without a GPU (TORCH_CUDA_ARCH_LIST set).
    Returns the status (never raises for a missing tool or a failed build); the result is kept for
    the life of the process, as gsplat's import is.
    """
    problem = device_problem(need_device)
    if problem:
        return ExtensionStatus(False, problem, 0.0, None, False)
    if precompiled():
        return _import_backend(None, compiled=False)
    problem = toolchain_problem()
    if problem:
        return ExtensionStatus(False, problem, 0.0, None, False)
    where = build_dir()
    if not build and not is_built(where):
        return ExtensionStatus(False, f"not built yet in {where} (the first gsplat run compiles it, "
                                      "minutes; build it once with: bench doctor --build-gsplat)",
                               0.0, str(where), False, needs_build=True)
    status = _import_backend(where, compiled=not is_built(where))
    if status.ok:
        _write_marker(where, status)
    return status


def require_extension() -> ExtensionStatus:
    """:func:`ensure_extension` (building when needed) for a run on CUDA; BenchError when it fails."""
    status = ensure_extension()
    if not status.ok:
        raise BenchError(f"gsplat backend: gsplat's CUDA extension: {status.reason}")
    return status


def build_error_line(message: str) -> str:
    """The line of a failed build's output that names the cause: the first compiler error.

    The first error rather than the last: with parallel compiles ninja interleaves the output of
    several failing files, and later errors of one file are often consequences of the first.
    Falls back to the last line that is not ninja's own summary.
    """
    text = re.sub(r"^Error building extension '[^']*':?", "", message.strip())
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("FAILED:", "ninja: build stopped"))]
    for line in lines:
        if CAUSE.search(line) and not line.startswith("["):  # "[3/29] nvcc ..." echoes a command
            return line[:300]
    # With VERBOSE=1 torch prints the compiler output instead of putting it into the error.
    return lines[-1][:300] if lines else "see the compiler output above"


def fingerprint(arch_list: str | None) -> dict[str, str]:
    """What a build is for beyond its sources: Python, torch and gsplat versions, target GPUs."""
    return {"python": platform.python_version(), "torch": version("torch"), "gsplat": version("gsplat"),
            "cuda_arch_list": arch_list or "visible GPUs"}


def _import_backend(where: Path | None, compiled: bool) -> ExtensionStatus:
    """Import ``gsplat.cuda._backend`` (which builds or loads) and classify what went wrong."""
    where_s = str(where) if where else None
    start = time.perf_counter()
    try:
        from gsplat.cuda import _backend
    except RuntimeError as err:  # torch's "Error building extension 'gsplat_cuda': <ninja output>"
        text = str(err)
        reason = (f"build failed in {where}: {build_error_line(text)}" if "Error building extension" in text
                  else f"build failed: {_first_line(text)}")
        return ExtensionStatus(False, reason, time.perf_counter() - start, where_s, compiled)
    except (ImportError, OSError) as err:  # e.g. a .so built against another torch or CUDA
        return ExtensionStatus(False, f"the built extension does not load: {_first_line(str(err))}",
                               time.perf_counter() - start, where_s, compiled)
    seconds = time.perf_counter() - start
    if _backend._C is None:
        return ExtensionStatus(False, "gsplat found no CUDA toolkit (gsplat: No CUDA toolkit found)",
                               seconds, where_s, compiled)
    loaded_from = os.path.dirname(getattr(_backend._C, "__file__", None) or "") or where_s
    return ExtensionStatus(True, "", seconds, loaded_from, compiled)


def _write_marker(where: Path, status: ExtensionStatus) -> None:
    """Record what the build in ``where`` is for, so a sweep can skip building it again."""
    from bench.atomic import write_json

    path = where / MARKER
    info = fingerprint(os.environ.get("TORCH_CUDA_ARCH_LIST"))
    try:
        if json.loads(path.read_text()).get("fingerprint") == info:
            return
    except (OSError, ValueError):
        pass
    try:
        write_json(path, {"fingerprint": info, "host": platform.node(), "seconds": round(status.seconds, 1),
                          "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    except OSError:
        pass  # a read-only shared build directory still works; only the sweep's skip check is lost


@contextmanager
def _quiet_cpp_extension() -> Iterator[None]:
    """Importing torch.utils.cpp_extension without a GPU logs "No CUDA runtime is found" (noise here)."""
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or ["(no message)"])[0][:300]

