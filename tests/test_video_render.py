"""``bench render`` (bench.video.render, bench.cli.render) on one tiny trained run shared by the module."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from bench import rundir
from bench.cli import main
from method_tiny import H, N, SMALL, W, trained_once
from test_video_encode import decode

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run trained once; the data registry serves its scene for the whole module."""
    yield from trained_once(tmp_path_factory, "render")


def _render(run_dir, *options) -> int:
    return main(["render", str(run_dir), "--device", "cpu", *options])


def test_the_test_path_has_one_frame_per_test_view_at_the_test_size(run, capsys):
    assert _render(run) == 0
    out = run / rundir.VIDEOS / "test.mp4"
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    frames = decode(out)
    assert len(frames) == N and frames[0].shape == (H, W, 3)


def test_fixed_path_shows_the_square_moving(run, tmp_path):
    out = tmp_path / "fixed.mp4"
    assert _render(run, "--path", "fixed", "--frames", "6", "--scale", "2", "--out", str(out)) == 0
    frames = decode(out)
    assert len(frames) == 6 and frames[0].shape == (2 * H, 2 * W, 3)
    # the camera holds still, so what changes with time is the moving square: in its rows (|y| < 0.25 at
    # depth 2: rows H/2 -+ 5 at scale 1), not in the wall's rows below it
    square = slice(2 * (H // 2 - 5), 2 * (H // 2 + 5))
    wall = slice(2 * (H // 2 + 8), 2 * H)
    for later in frames[1:]:
        change = np.abs(later.astype(float) - frames[0])
        assert change[square].mean() > 3 * change[wall].mean()


@pytest.mark.parametrize("kind", ["spiral", "bullet"])
def test_spiral_and_bullet_paths_move_the_camera(run, tmp_path, kind):
    out = tmp_path / f"{kind}.mp4"
    assert _render(run, "--path", kind, "--frames", "4", "--width", "32", "--out", str(out)) == 0
    frames = decode(out)
    assert len(frames) == 4 and frames[0].shape[1] == 32
    assert np.abs(frames[1].astype(float) - frames[0]).mean() > 0


def test_panels_widen_the_frame_one_test_size_each(run, tmp_path):
    out = tmp_path / "panels.mp4"
    assert _render(run, "--show", "blurred,kernels,depth", "--out", str(out)) == 0
    frames = decode(out)
    assert len(frames) == N and frames[0].shape == (H, 4 * W, 3)
    panels = np.split(frames[0].astype(float), 4, axis=1)
    assert all(np.abs(p - panels[0]).mean() > 1 for p in panels[2:])  # colour maps, not the render again


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_an_unknown_panel_or_camera_is_named_with_the_allowed_ones(run, capsys):
    assert _render(run, "--show", "blurred,foo") == 2
    assert "--show foo: unknown panel; allowed: blurred, kernels, depth" in _error(capsys)
    assert _render(run, "--path", "fixed", "--camera", str(N)) == 2
    assert f"--camera {N}: expected a training camera 0 .. {N - 1}" in _error(capsys)
    assert _render(run, "--path", "bullet", "--time", "1.5") == 2
    assert "--time 1.5: expected a value in [0, 1]" in _error(capsys)
    assert not (run / rundir.VIDEOS / "fixed.mp4").exists() and not (run / rundir.VIDEOS / "bullet.mp4").exists()


def test_a_run_without_its_checkpoint_or_bpnet_is_one_line_and_exit_2(run, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns(rundir.VIDEOS))
    final = rundir.checkpoint_path(copy, SMALL["train.steps"])
    state = torch.load(final, weights_only=False)
    state.pop("bpnet")  # a state saved without BP-Net, as a variant without a blur module saves
    torch.save(state, final)
    assert _render(copy, "--show", "depth,blurred") == 2
    assert "--show blurred:" in (err := _error(capsys)) and "has no BP-Net" in err
    assert _render(copy, "--show", "depth", "--out", str(tmp_path / "d.mp4")) == 0
    final.unlink()
    assert _render(copy) == 2
    assert "final checkpoint" in _error(capsys)
    assert not (copy / rundir.VIDEOS).exists()
