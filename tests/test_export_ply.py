"""``bench export --ply``: a trained run's Gaussians at a time as a 3DGS PLY file that renders, read
back, as the run itself renders at that time (bench.export.ply)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from plyfile import PlyData

from bench import rundir
from bench.cli import main
from bench.export.ply import file_name, parse_times, property_names
from bench.errors import BenchError
from bench.method.saved_run import SavedRun
from bench.render import rasterize

from method_tiny import SMALL, trained_once

# 3D Gaussian Splatting's GaussianModel.construct_list_of_attributes for SH degree 1 (K = 4)
DGS_DEGREE_1 = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2",
                *[f"f_rest_{i}" for i in range(9)], "opacity", "scale_0", "scale_1", "scale_2",
                "rot_0", "rot_1", "rot_2", "rot_3"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run trained for the module, the tiny scene served by the registry meanwhile."""
    yield from trained_once(tmp_path_factory, "export", **{"model.sh_degree": 1})


def read_ply(path) -> dict[str, torch.Tensor]:
    """The Gaussians of a 3DGS PLY file as our parameter tensors (bench.method.model's layout)."""
    v = PlyData.read(str(path))["vertex"]
    col = lambda *names: torch.from_numpy(np.stack([np.asarray(v[n]) for n in names], axis=1))  # noqa: E731
    rest = sorted((p.name for p in v.properties if p.name.startswith("f_rest_")), key=lambda n: int(n[7:]))
    n = len(v.data)
    return {"means": col("x", "y", "z"), "quats": col("rot_0", "rot_1", "rot_2", "rot_3"),
            "log_scales": col("scale_0", "scale_1", "scale_2"), "opacity_logits": col("opacity")[:, 0],
            "sh_dc": col("f_dc_0", "f_dc_1", "f_dc_2")[:, None, :],
            "sh_rest": col(*rest).reshape(n, 3, len(rest) // 3).transpose(1, 2)}


def test_the_property_names_are_3dgs_ones_in_its_order():
    assert property_names(3) == DGS_DEGREE_1
    assert property_names(0)[6:10] == ["f_dc_0", "f_dc_1", "f_dc_2", "opacity"]


def test_times_outside_0_1_or_not_numbers_are_refused():
    assert parse_times("0,0.5,1") == [0.0, 0.5, 1.0]
    for bad, says in (("0,1.5", r"1\.5 is outside \[0, 1\]"), ("-0.1", "outside"), ("0,half", "'half' is not a number"),
                      ("nan", "outside"), ("", "not a number")):
        with pytest.raises(BenchError, match=says):
            parse_times(bad)
    assert file_name(0.5) == "gaussians_t0.500.ply"


@pytest.mark.slow
def test_an_exported_ply_renders_as_the_run_does_at_that_time(trained, tiny, capsys):
    assert main(["export", str(trained), "--ply", "--times", "0,0.625"]) == 0
    out = trained / "export"
    assert sorted(p.name for p in out.iterdir()) == ["gaussians_t0.000.ply", "gaussians_t0.625.ply"]
    assert f"wrote {out / 'gaussians_t0.625.ply'}" in capsys.readouterr().out
    ply = PlyData.read(str(out / "gaussians_t0.625.ply"))
    assert ply.text is False and ply.byte_order == "<" and [e.name for e in ply.elements] == ["vertex"]
    assert [p.name for p in ply["vertex"].properties] == DGS_DEGREE_1
    assert all(p.val_dtype == "f4" for p in ply["vertex"].properties)

    saved = SavedRun.load(trained)
    assert saved.model.num_dynamic > 0  # the motion matters: the square moves
    g = read_ply(out / "gaussians_t0.625.ply")
    assert g["sh_rest"].shape[1] == 3 and torch.equal(g["sh_rest"], saved.model.params["sh_rest"].detach())
    frame = 0.625 * (len(saved.data.names) - 1)  # 2.5: between two training frames
    d = saved.data
    for j in (0, len(d.test_names) - 1):
        own = saved.render(d.test_K[j], d.test_w2c[j], d.test_W, d.test_H, frame).rgb
        sh = saved.sh_degree
        back = rasterize(g["means"], g["quats"], g["log_scales"], g["opacity_logits"],
                         torch.cat([g["sh_dc"], g["sh_rest"][:, : (sh + 1) ** 2 - 1]], dim=1),
                         d.test_w2c[j][None], d.test_K[j][None], d.test_W, d.test_H, sh_degree=sh,
                         backend=saved.choice.backend).rgb[0]
        assert (back - own).abs().max().item() <= 1e-4
    # at another time the dynamic Gaussians stand elsewhere, the static ones where they were
    g0 = read_ply(out / "gaussians_t0.000.ply")
    moving = saved.model.params["flag"] > 0.5
    assert torch.equal(g0["means"][~moving], g["means"][~moving])
    assert (g0["means"][moving] - g["means"][moving]).abs().max() > 1e-3


@pytest.mark.slow
def test_export_refuses_bad_times_and_a_run_without_its_checkpoint(trained, tiny, tmp_path, capsys):
    assert main(["export", str(trained), "--ply", "--times", "0,2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench export: error: --times '0,2': 2 is outside [0, 1]") and "\n" not in err
    assert main(["export", str(trained), "--ply", "--times", "0,one"]) == 2
    assert "'one' is not a number" in capsys.readouterr().err
    assert main(["export", str(trained), "--ply", "--state", "best_test", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert "best_test.pt" in err and "\n" not in err and not (tmp_path / "x").exists()
    final = rundir.checkpoint_path(trained, SMALL["train.steps"])
    moved = final.rename(final.with_suffix(".bak"))
    try:
        assert main(["export", str(trained), "--ply", "--out", str(tmp_path / "y")]) == 2
        err = capsys.readouterr().err.strip()
        assert "final checkpoint" in err and "\n" not in err and not (tmp_path / "y").exists()
    finally:
        moved.rename(final)
