"""Checkpoints: RNG states survive a load onto another device; a corrupt newest checkpoint falls back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import bench.method.checkpoints as C
from bench import rundir
from bench.errors import BenchError
from method_tiny import final_state, interrupt_tiny, train_tiny


def test_checkpoint_rng_states_stay_on_the_cpu_when_training_state_moves(tmp_path):
    """Loading for another device must not move the saved RNG ByteTensors with the parameters
    (torch.set_rng_state rejects a CUDA tensor); 'meta' stands in for the GPU here."""
    path = tmp_path / "step_0000001.pt"
    torch.manual_seed(5)
    rng = C.rng_state()
    torch.save({"model": {"params": {"means": torch.zeros(3, 3)}}, "bpnet": None,
                "optimizers": {}, "densify": {"stats": {"count": torch.zeros(3)}, "extent": 1.0},
                "rng": rng}, path)
    state = C.read_checkpoint(path, torch.device("meta"))
    assert state["model"]["params"]["means"].device.type == "meta"
    assert state["densify"]["stats"]["count"].device.type == "meta"
    assert state["rng"]["torch"].device.type == "cpu" and state["rng"]["torch"].dtype == torch.uint8
    expected = torch.rand(4)
    torch.manual_seed(99)
    C.set_rng_state(state["rng"])
    assert torch.equal(torch.rand(4), expected)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


@pytest.mark.slow
def test_corrupt_newest_checkpoint_falls_back_to_the_next_older_one(tiny, tmp_path, monkeypatch):
    straight, run = tmp_path / "straight", tmp_path / "run"
    train_tiny(straight)
    interrupt_tiny(run, 33, monkeypatch)  # after the checkpoints at 20 and 30
    newest = rundir.checkpoint_path(run, 30)
    _truncate(newest)
    train_tiny(run)
    log = (run / rundir.LOG).read_text()
    assert "checkpoint step_0000030.pt does not load" in log and "resumed from step_0000020.pt" in log
    assert newest.with_name(newest.name + ".corrupt").is_file()
    a, b = final_state(straight), final_state(run)
    for key, value in a["model"]["params"].items():
        assert torch.equal(value, b["model"]["params"][key]), key


def test_no_loadable_checkpoint_is_one_line_naming_the_file(tiny, tmp_path):
    run = tmp_path / "run"
    train_tiny(run, **{"train.steps": 4, "train.checkpoint_every": 2, "train.log_every": 2})
    for path in (run / rundir.CHECKPOINTS).glob("step_*.pt"):
        _truncate(path)
    with pytest.raises(BenchError, match=r"step_0000004\.pt: no checkpoint of this run loads"):
        train_tiny(run, **{"train.steps": 4, "train.checkpoint_every": 2, "train.log_every": 2})


def test_peak_memory_of_a_cpu_run_has_no_gpu_figure():
    from bench.provenance import peak_memory_bytes

    peak = peak_memory_bytes(cuda=False)
    assert peak["gpu_allocated"] is None and peak["cpu_rss"] > 0
    assert np.isfinite(peak["cpu_rss"])
