"""A trained run loaded from its directory (bench.method.saved_run.SavedRun) renders what training
rendered, and its BP-Net blurs as it did in training."""

from __future__ import annotations

import numpy as np
import pytest

from bench import rundir
from bench.errors import BenchError
from bench.method.saved_run import SavedRun
from bench.metrics.evaluate import read_render

from method_tiny import SMALL, train_tiny


@pytest.mark.slow
def test_a_saved_run_renders_its_test_views_as_training_wrote_them(tiny, tmp_path):
    run = tmp_path / "run"
    train_tiny(run)
    saved = SavedRun.load(run)
    assert saved.step == SMALL["train.steps"] and saved.bpnet is not None
    d = saved.data
    for j, name in enumerate(d.test_names):
        r = saved.render(d.test_K[j], d.test_w2c[j], d.test_W, d.test_H, int(d.test_frame[j]))
        written, bits = read_render(run / rundir.TEST_RENDERS / f"{name}.png")
        assert bits == 16
        assert np.abs(r.rgb.clamp(0, 1).cpu().numpy() - written).max() <= 1 / 65535 + 1e-6
    blurred, kernels, mask = saved.blurred(r, float(d.test_frame[-1]))
    K = saved.cfg.blur.kernel_size
    assert blurred.shape == r.rgb.shape and kernels.shape == (d.test_H, d.test_W, K * K)
    assert mask.shape == (d.test_H, d.test_W) and float(kernels.sum(-1).mean()) == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(BenchError, match="best_test.pt: missing"):
        SavedRun.load(run, "best_test")
    with pytest.raises(BenchError, match="state 'middle'"):
        SavedRun.load(run, "middle")
    rundir.checkpoint_path(run, SMALL["train.steps"]).unlink()
    with pytest.raises(BenchError, match="final checkpoint"):
        SavedRun.load(run)
