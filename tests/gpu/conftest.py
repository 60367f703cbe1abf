"""GPU suite: every test here carries the ``gpu`` marker and skips, with the reason, without CUDA.

Each test's outcome is appended, as soon as it is known, to a report file (env ``BENCH_GPU_REPORT``,
default tests/gpu/.last_report.txt, which a session overwrites; an explicit path is appended to):
one line per test with its outcome, duration and the figures it measured through the ``record``
fixture, plus a "started" line before each test, so a run killed by a timeout still shows how far
it got and every result before that. The suite's order (file names sort cheapest first):
0 device + gsplat extension build/load + one Gaussian, 1 renders, 2 gradients, 3 training.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

REPORT_ENV = "BENCH_GPU_REPORT"
DEFAULT_REPORT = HERE / ".last_report.txt"
MARKER = "gpu: needs a CUDA GPU (skips with a reason otherwise)"

_report_started = False
_phases: dict[str, dict] = {}


def no_cuda_reason() -> str | None:
    """Why this machine cannot run the suite, or None when it can."""
    if torch.cuda.is_available():
        return None
    built = torch.version.cuda
    return (f"needs a CUDA GPU: torch.cuda.is_available() is False (torch {torch.__version__}, "
            + (f"built for CUDA {built}; no usable GPU or driver visible)" if built else "a CPU-only build)"))


def _ours(nodeid: str) -> bool:
    return Path(nodeid.split("::")[0]).name.startswith("test_gpu_")


def report_path() -> Path:
    return Path(os.environ.get(REPORT_ENV) or DEFAULT_REPORT)


def write_report_line(line: str) -> None:
    """Append one line to the report (the first write of a session starts the default file anew
    and writes a header), flushed and synced so a killed run keeps it."""
    global _report_started
    path = report_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    explicit = bool(os.environ.get(REPORT_ENV))
    mode = "a" if (_report_started or explicit) else "w"
    with open(path, mode) as f:
        if not _report_started:
            gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA"
            f.write(f"# GPU suite {time.strftime('%Y-%m-%d %H:%M:%S')} on {socket.gethostname()}: {gpu}, "
                    f"torch {torch.__version__} (CUDA {torch.version.cuda})\n")
        f.write(line.rstrip("\n") + "\n")
        f.flush()
        os.fsync(f.fileno())
    _report_started = True


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return repr(text) if (" " in text or not text) else text


def _message(report) -> str:
    longrepr = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple):  # skip: (path, line, reason)
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and crash.message:
        return crash.message
    lines = str(longrepr).strip().splitlines()
    return lines[-1] if lines else ""


def pytest_configure(config):
    if not any(str(m).startswith("gpu:") for m in config.getini("markers")):
        config.addinivalue_line("markers", MARKER)


def pytest_collection_modifyitems(config, items):
    # called with every item of the session: only this folder's get the marker and the skip
    reason = no_cuda_reason()
    for item in items:
        if _ours(item.nodeid):
            item.add_marker(pytest.mark.gpu)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


def pytest_runtest_logstart(nodeid, location):
    if _ours(nodeid):
        write_report_line(f"started {nodeid.split('/')[-1]} at {time.strftime('%H:%M:%S')}")


def pytest_runtest_logreport(report):
    if not _ours(report.nodeid):
        return
    phases = _phases.setdefault(report.nodeid, {})
    phases[report.when] = report
    if report.when != "teardown":
        return
    del _phases[report.nodeid]
    outcome, message = "passed", ""
    for when in ("setup", "call", "teardown"):
        rep = phases.get(when)
        if rep is None or rep.passed:
            continue
        if rep.skipped:
            outcome = "skipped"
        else:
            outcome = "failed" if when == "call" else "error"
        message = _message(rep)
        break
    duration = sum(rep.duration for rep in phases.values())
    figures = " ".join(f"{k}={_fmt(v)}" for k, v in report.user_properties)
    line = f"{outcome.upper():7} {report.nodeid.split('/')[-1]} {duration:.1f}s"
    if figures:
        line += " " + figures
    if message:
        line += " | " + " ".join(message.split())[:600]
    write_report_line(line)


@pytest.fixture
def record(request):
    """``record(name=value, ...)``: figures of this test for its report line (and stdout)."""

    def _record(**values):
        for key, value in values.items():
            request.node.user_properties.append((key, value))
            print(f"[record] {key}={_fmt(value)}", flush=True)

    return _record


@pytest.fixture(scope="session")
def cuda():
    """The CUDA device (tests pin it explicitly)."""
    return torch.device("cuda", 0)


@pytest.fixture(scope="session")
def gsplat_ready():
    """Skips the test when gsplat's CUDA extension does not load (test_gpu_0 fails and says why)."""
    from gpu_compare import load_gsplat_extension

    ext = load_gsplat_extension()
    if not ext["ok"]:
        pytest.skip(f"gsplat's CUDA extension is unavailable ({ext['source']}): {ext['error'][:300]}")
    return ext
