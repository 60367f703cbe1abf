"""Method registry: variants are data (``methods/*.yaml``) on top of base implementations.

A variant file holds ``name``, ``base`` (a key of :data:`BASE_METHODS`), a one-line
``description`` and ``overrides`` (flat dotted config keys). Listing variants reads YAML only and
never imports torch; :func:`base_implementation` imports the training code on demand.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bench.errors import BenchError
from bench.repo import REPO_ROOT

METHODS_DIR = REPO_ROOT / "methods"

# Base method name -> "module:function" training it: fn(run_dir, cfg, record, *, scene, choice, progress),
# as bench.method.train.run_dydeblur (train_run loads the scene and picks the device first).
BASE_METHODS: dict[str, str] = {
    "dydeblur": "bench.method.train:run_dydeblur",
}


class MethodSpec(BaseModel):
    """One variant as written in ``methods/<name>.yaml``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    base: str
    description: str
    overrides: dict[str, Any] = Field(default_factory=dict)


def _load(path: Path) -> MethodSpec:
    try:
        data = yaml.safe_load(path.read_text())
        spec = MethodSpec.model_validate(data)
    except (yaml.YAMLError, ValidationError) as err:
        msg = str(err).replace("\n", " ")
        raise BenchError(f"{path}: expected keys name, base, description, overrides ({msg})") from None
    if spec.name != path.stem:
        raise BenchError(f"{path}: name {spec.name!r} must equal the file name {path.stem!r}")
    if spec.base not in BASE_METHODS:
        raise BenchError(f"{path}: base {spec.base!r} unknown; known bases: {', '.join(BASE_METHODS)}")
    return spec


def list_methods(methods_dir: Path | None = None) -> list[MethodSpec]:
    """Every variant in ``methods/``, sorted by name."""
    folder = methods_dir or METHODS_DIR
    return [_load(p) for p in sorted(folder.glob("*.yaml"))]


def get_method(name: str, methods_dir: Path | None = None) -> MethodSpec:
    """The variant called ``name``; BenchError listing the known variants otherwise."""
    specs = {s.name: s for s in list_methods(methods_dir)}
    if name not in specs:
        raise BenchError(f"method {name!r}: unknown variant; known variants: {', '.join(specs) or '(none)'}")
    return specs[name]


def base_implementation(base: str) -> Callable[..., dict]:
    """Import and return the implementation of base method ``base``."""
    if base not in BASE_METHODS:
        raise BenchError(f"base method {base!r}: unknown; known bases: {', '.join(BASE_METHODS)}")
    module, _, func = BASE_METHODS[base].partition(":")
    return getattr(importlib.import_module(module), func)
