"""Common random numbers: every stochastic purpose of training has its own stream, so variants of one
seed draw the same views, split noise and initial values wherever their difference does not reach."""

from __future__ import annotations

import shutil

import pytest
import torch

import bench.method.densify as D
import bench.method.registry as R
import bench.method.train as T
from bench.method.rng import PURPOSES, generator, global_stream, seed_of
from method_tiny import curves, final_state, train_tiny


def test_seeds_are_stable_and_distinct_per_purpose_and_step():
    assert seed_of(0, "view", 0) == 82857067679486305  # sha256-based: the same on every machine and run
    assert seed_of(3, "split", 12) == 5656447888735649717
    seeds = {seed_of(s, p, k) for s in (0, 1) for p in PURPOSES for k in (None, 0, 1)}
    assert len(seeds) == 2 * len(PURPOSES) * 3
    assert torch.equal(torch.rand(4, generator=generator(1, "dgd", 5)), torch.rand(4, generator=generator(1, "dgd", 5)))
    with pytest.raises(ValueError, match="'views'"):
        seed_of(0, "views")


def test_global_stream_leaves_the_global_rng_where_it_was():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    with global_stream(0, "bpnet"):
        torch.nn.Linear(50, 50)  # draws from the global RNG
    assert torch.equal(torch.rand(3), expected)


@pytest.fixture
def methods_dir(tmp_path, monkeypatch):
    """The registered variants plus ``full_renders``: ``full`` with a key that only changes outputs."""
    folder = tmp_path / "methods"
    shutil.copytree(R.METHODS_DIR, folder)
    (folder / "full_renders.yaml").write_text(
        "name: full_renders\nbase: dydeblur\ndescription: test only - full, saving one training view fewer.\n"
        "overrides:\n  train.num_train_renders: 1\n")
    monkeypatch.setattr(R, "METHODS_DIR", folder)
    return folder


@pytest.mark.slow
def test_a_key_without_effect_on_training_reproduces_full_bit_for_bit(tiny, tmp_path, methods_dir):
    train_tiny(tmp_path / "full")
    train_tiny(tmp_path / "other", method="full_renders")
    a, b = final_state(tmp_path / "full"), final_state(tmp_path / "other")
    for part in ("params", "bases"):
        for key, value in a["model"][part].items():
            assert torch.equal(value, b["model"][part][key]), (part, key)
    for key, value in a["bpnet"].items():
        assert torch.equal(value, b["bpnet"][key]), key
    drop = lambda rows: [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]  # noqa: E731
    assert drop(curves(tmp_path / "full")) == drop(curves(tmp_path / "other"))


def _record_draws(monkeypatch) -> tuple[list, list]:
    """Hooks recording each step's training view and the stream each densification round's split
    noise is drawn from (its generator's state; the global RNG's when it has none)."""
    views, splits = [], []
    target, densify_and_prune = T.target, D.densify_and_prune

    def record_target(run, s):
        t = target(run, s)
        views.append((s, t["virtual"], t.get("view"), t["frame"]))
        return t

    def record_densify(*args, generator=None, **kwargs):
        state = torch.get_rng_state() if generator is None else generator.get_state()
        counts = densify_and_prune(*args, generator=generator, **kwargs)
        splits.append((state, counts["split"]))
        return counts

    monkeypatch.setattr(T, "target", record_target)
    monkeypatch.setattr(D, "densify_and_prune", record_densify)
    return views, splits


@pytest.mark.slow
def test_no_shortcut_draws_the_same_views_and_split_noise_as_full(tiny, tmp_path):
    draws = {}
    for variant in ("full", "no_shortcut"):
        with pytest.MonkeyPatch.context() as mp:
            draws[variant] = _record_draws(mp)
            train_tiny(tmp_path / variant, method=variant)
    (views_a, splits_a), (views_b, splits_b) = draws["full"], draws["no_shortcut"]
    assert len(views_a) == 40 and views_a == views_b
    assert any(v[1] for v in views_a) and len({v[2] for v in views_a if not v[1]}) > 1
    # Rounds run before and after BP-Net joins at step 10, where the two models part ways.
    assert len(splits_a) == len(splits_b) >= 10 and any(n for _, n in splits_a)  # some round splits
    for i, ((a, _), (b, _)) in enumerate(zip(splits_a, splits_b)):
        assert torch.equal(a, b), f"densification round {i} draws other split noise"
    a, b = final_state(tmp_path / "full"), final_state(tmp_path / "no_shortcut")
    assert not torch.equal(a["model"]["params"]["means"], b["model"]["params"]["means"])  # they do differ
