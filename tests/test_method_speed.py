"""Rendering speed of a trained run (bench.method.speed, ``bench fps``): measured on the test views,
recorded as results.json's ``speed`` block, kept by ``bench eval``."""

from __future__ import annotations

import json

import pytest

from bench import rundir
from bench.cli import main
from bench.errors import BenchError
from bench.method.saved_run import SavedRun
from bench.method.speed import backend_name, measure
from bench.render import cpu_ext
from bench.metrics.results import identity_from_config, write_results
from bench.provenance import cpu_model

from method_tiny import trained_once


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run trained for the module, the tiny scene served by the registry meanwhile."""
    yield from trained_once(tmp_path_factory, "speed")


@pytest.mark.slow
def test_the_speed_block_describes_what_was_rendered_where(trained, tiny):
    saved = SavedRun.load(trained, device="cpu")
    speed = measure(saved, repeats=2, warmup=0)
    assert speed["fps"] > 0 and speed["repeats"] == 2 and speed["warmup"] == 0 and speed["state"] == "last"
    assert speed["views"] == len(tiny.test) and speed["resolution"] == [48, 32]
    assert speed["num_gaussians"] == saved.model.num_gaussians and speed["threads"] >= 1
    assert speed["device"] == cpu_model()
    if cpu_ext.active_path() == "compiled":  # the instruction set the kernels run, as use_isa set it
        assert cpu_ext.active_isa() in cpu_ext.isas()
        assert speed["backend"] == f"compiled CPU kernels ({cpu_ext.active_isa()})"
        try:
            cpu_ext.use_isa("base")
            assert backend_name(saved) == "compiled CPU kernels (base)"
        finally:
            cpu_ext.use_isa("auto")
    else:
        assert speed["backend"] == "torch (CPU)"
    with pytest.raises(BenchError, match="repeats=0"):
        measure(saved, repeats=0)


BLOCK = {"protocol": {"name": "stand-in"}, "aggregate": {"psnr": 20.0}, "per_image": {}, "missing": {}}


@pytest.mark.slow
def test_bench_fps_prints_and_records_the_speed_and_bench_eval_keeps_it(trained, tiny, monkeypatch, capsys):
    assert main(["fps", str(trained), "--repeats", "2", "--warmup", "0"]) == 0
    out = capsys.readouterr().out
    assert " FPS: 5 test views at 48x32" in out and "not recorded" in out  # no results.json yet
    assert not (trained / rundir.RESULTS).exists()

    # the run finished: results.json as evaluation writes it (the tiny scene has no protocol to score it with)
    write_results(trained, identity_from_config(trained), BLOCK, {"train": {"steps": 40}})
    assert main(["fps", str(trained), "--repeats", "2", "--warmup", "1", "--device", "cpu"]) == 0
    assert f"wrote {trained / rundir.RESULTS}" in capsys.readouterr().out
    doc = json.loads((trained / rundir.RESULTS).read_text())
    assert list(doc)[: len(rundir.IDENTITY_KEYS)] == list(rundir.IDENTITY_KEYS)  # identity stays first
    assert doc["speed"]["repeats"] == 2 and doc["speed"]["warmup"] == 1 and doc["speed"]["fps"] > 0
    assert doc["metrics"] == BLOCK and doc["train"] == {"steps": 40}

    # `bench eval` re-scores (the scores stand in) and keeps the speed block
    rescored = {**BLOCK, "aggregate": {"psnr": 21.0}}
    monkeypatch.setattr("bench.metrics.modes.evaluate_modes", lambda run_dir, **kw: (rescored, {}))
    assert main(["eval", str(trained)]) == 0
    again = json.loads((trained / rundir.RESULTS).read_text())
    assert again["metrics"] == rescored and again["speed"] == doc["speed"] and "evaluated" in again

    assert main(["fps", str(trained), "--repeats", "0"]) == 2
    assert "--repeats 0" in capsys.readouterr().err
