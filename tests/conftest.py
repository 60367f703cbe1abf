"""Shared fixtures: writing small sweep files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from method_tiny import tiny_scene


@pytest.fixture
def write_sweep(tmp_path):
    """``write_sweep(name="t", **keys) -> Path`` of a sweep YAML whose output_root is tmp_path/out."""

    def _write(name: str = "t", **keys) -> Path:
        doc = {"name": name, "output_root": str(tmp_path / "out"), "profile": "cpu",
               "variants": ["full", "no_blur"],
               "datasets": [{"name": "synthetic", "scenes": ["motion_0", "defocus_0"]}],
               "seeds": [0], "overrides": {"train.steps": 20}, "executor": {"kind": "debug", "device": "cpu"}}
        doc.update(keys)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    return _write


@pytest.fixture(autouse=True)
def _own_sweep_index(tmp_path_factory, monkeypatch):
    """Each test records sweep outputs in its own index (bench.harness.sweep_index), never the user's."""
    monkeypatch.setenv("BENCH_STATE", str(tmp_path_factory.mktemp("bench_state")))


@pytest.fixture
def tiny_data(monkeypatch):
    """The tiny analytic scene of method_tiny, loaded for any registered dataset and scene (the
    registry still checks the names): training loads its scene before it writes anything."""
    scene = tiny_scene()
    monkeypatch.setattr("bench.data.registry.load_scene", lambda dataset, name, data_root=None: scene)
    return scene


@pytest.fixture
def tiny(tiny_data, monkeypatch):
    """The tiny analytic scene of method_tiny, served by the data registry under any name."""
    monkeypatch.setattr("bench.data.registry.blur_type_of", lambda dataset, name: tiny_data.blur_type)
    return tiny_data


@pytest.fixture(params=["torch", "compiled-avx512", "compiled-avx2", "compiled-base"])
def cpu_path(request):
    """Run the test on the pure-PyTorch CPU path and on the compiled CPU kernels
    (bench.render.cpu_ext) with each instruction set of their float32 kernels this CPU runs."""
    from bench.render import cpu_ext

    compiled = request.param != "torch"
    if compiled:
        isa = request.param.split("-", 1)[1]
        if cpu_ext.load() is None:
            pytest.skip(f"compiled CPU kernels unavailable: {cpu_ext.failure()}")
        if isa not in cpu_ext.isas():
            pytest.skip(f"this CPU does not run the {isa} kernels")
        cpu_ext.use_isa(isa)
    cpu_ext.use_compiled(compiled)
    yield request.param
    cpu_ext.use_compiled(None)
    if compiled:
        cpu_ext.use_isa("auto")
