"""A trained run's Gaussians at a moment as a 3D Gaussian Splatting PLY file, the layout common
splat viewers read.

Binary little-endian, one ``vertex`` element of float32 properties in 3DGS's order (its
``GaussianModel.save_ply``): x, y, z; nx, ny, nz (zeros); f_dc_0..2; f_rest_0..3*(K-1)-1, all rest
coefficients of red, then green, then blue (``sh_rest`` (N,K-1,3) transposed to (N,3,K-1)); opacity
(the logit); scale_0..2 (log standard deviations); rot_0..3 (the quaternion w, x, y, z). Our
parameters are stored in exactly these conventions (bench.method.model: wxyz quaternions, log
scales, opacity logits, SH with gsplat's constants, which are 3DGS's), so nothing is converted.

What a PLY cannot hold: the motion. Dynamic Gaussians are written where they are at the requested
time, static ones as they are; a file per time. Every SH coefficient the model has is written
(its ``max_sh_degree``), whatever degree the run's evaluation renders with.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch

from bench import rundir
from bench.atomic import write_bytes
from bench.errors import BenchError



def property_names(num_rest: int) -> list[str]:
    """The vertex properties, in order, of Gaussians with ``num_rest`` = K-1 rest SH coefficients per channel."""
    return (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
            + [f"f_rest_{i}" for i in range(3 * num_rest)] + ["opacity"]
            + [f"scale_{i}" for i in range(3)] + [f"rot_{i}" for i in range(4)])


def gaussians_ply(means: torch.Tensor, quats: torch.Tensor, log_scales: torch.Tensor,
                  opacity_logits: torch.Tensor, sh_dc: torch.Tensor, sh_rest: torch.Tensor) -> bytes:
    """The PLY file's bytes of N Gaussians: means (N,3), quats (N,4) wxyz, log_scales (N,3),
    opacity_logits (N,), sh_dc (N,1,3), sh_rest (N,K-1,3)."""
    from plyfile import PlyData, PlyElement

    n, rest = means.shape[0], sh_rest.shape[1]
    columns = [means, torch.zeros_like(means), sh_dc.reshape(n, 3),
               sh_rest.transpose(1, 2).reshape(n, 3 * rest), opacity_logits.reshape(n, 1), log_scales, quats]
    values = torch.cat([c.detach().float().cpu() for c in columns], dim=1).numpy()
    names = property_names(rest)
    vertices = np.empty(n, dtype=[(name, "<f4") for name in names])
    for i, name in enumerate(names):
        vertices[name] = values[:, i]
    buf = io.BytesIO()
    PlyData([PlyElement.describe(vertices, "vertex")], byte_order="<").write(buf)
    return buf.getvalue()


def parse_times(text: str) -> list[float]:
    """``--times`` "0,0.5,1": fractions of the training sequence, each in [0, 1]; BenchError otherwise."""
    times = []
    for part in text.split(","):
        try:
            t = float(part)
        except ValueError:
            raise BenchError(f"--times {text!r}: {part.strip()!r} is not a number; expected fractions in "
                             "[0, 1] separated by commas, e.g. 0,0.5,1") from None
        if not (math.isfinite(t) and 0.0 <= t <= 1.0):
            raise BenchError(f"--times {text!r}: {part.strip()} is outside [0, 1] (0 = first training frame, "
                             "1 = last)")
        times.append(t)
    return times


def file_name(t: float) -> str:
    """``gaussians_t0.500.ply`` for time 0.5."""
    return f"gaussians_t{t:.3f}.ply"


def export_ply(run_dir, times: list[float], state: str = "last", out_dir=None,
               device: str = "auto") -> list[Path]:
    """Write ``run_dir``'s Gaussians of saved ``state`` at each time of ``times`` (fractions of the
    training sequence: training frame t * (T-1) of T) into ``out_dir`` (default RUN_DIR/export), one
    file per time, each atomically; returns their paths. BenchError when the run has no such state."""
    from bench.method.saved_run import SavedRun

    saved = SavedRun.load(run_dir, state, device)
    out_dir = Path(run_dir) / rundir.EXPORT if out_dir is None else Path(out_dir)
    model, p = saved.model, saved.model.params
    paths = []
    with torch.no_grad():
        for t in times:
            means, quats = model.at_frame(t * (model.bases.num_frames - 1))
            path = out_dir / file_name(t)
            write_bytes(path, gaussians_ply(means, quats, p["log_scales"], p["opacity_logits"], p["sh_dc"],
                                            p["sh_rest"]))
            paths.append(path)
    return paths
