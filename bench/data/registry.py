"""Dataset registry: ``datasets/*.yaml`` -> specs, data roots, validated scene loading.

Data root of a dataset: an explicit override (CLI ``--data-root``) > ``$BENCH_DATA/<name>`` >
the YAML's ``data_root`` (default ``datasets/data/<name>``) relative to the repository root. The
repository root is the folder above the ``bench`` package when it holds ``datasets/``, else the
current directory (package installed elsewhere).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from bench.errors import BenchError
from bench.repo import REPO_ROOT

BlurType = Literal["motion", "defocus", "mixed"]
Layout = Literal["dyblurf", "d4dgs", "d2rf"]


class SceneSpec(BaseModel):
    """One scene: name, the on-disk layout that holds it, its blur type, and (synthetic) a seed."""

    model_config = ConfigDict(extra="forbid")
    name: str
    layout: Layout
    blur_type: BlurType
    seed: int | None = None


class DatasetSpec(BaseModel):
    """One ``datasets/<name>.yaml``. ``layout`` is "synthetic" or the layout of every scene.

    train_height: DyBluRF layout training height (folder ``images_{W}x{H}``).
    resolution_factor: D2RF ``images_{factor}`` folder and focal divisor; for the Deblur4DGS
    layout None = derived from the COLMAP camera width.
    disparity: how the LLFF layouts' disparity files become depth: "inverse_depth" (exact, the
    synthetic scenes) or "relative" (monocular estimates, aligned to the LLFF bounds); see
    ``bench.data.common.depth_from_disparity``.
    """

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    citation: str = ""
    download: str = ""  # where the release is published (real data: nothing here downloads it)
    layout: Literal["dyblurf", "d4dgs", "d2rf", "synthetic"]
    blur_type: BlurType
    protocol: str
    train_height: int | None = None
    resolution_factor: float | None = None
    disparity: Literal["inverse_depth", "relative"] = "relative"
    data_root: str | None = None
    scenes: list[SceneSpec]
    source: Path | None = None

    @field_validator("scenes", mode="before")
    @classmethod
    def _scene_entries(cls, value, info):
        if not isinstance(value, list):
            raise ValueError("expected a list of scene names or mappings")
        layout, blur = info.data.get("layout"), info.data.get("blur_type")
        return [{"name": s, "layout": layout, "blur_type": blur} if isinstance(s, str) else s for s in value]

    @model_validator(mode="after")
    def _unique(self):
        names = [s.name for s in self.scenes]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate scene names in {names}")
        return self

    def scene(self, name: str) -> SceneSpec:
        """The scene spec called ``name``; BenchError listing the known scenes otherwise."""
        for s in self.scenes:
            if s.name == name:
                return s
        raise BenchError(f"scene {name!r}: not in dataset {self.name} (known: {', '.join(self.scene_names)})")

    @property
    def scene_names(self) -> list[str]:
        return [s.name for s in self.scenes]

    @property
    def resolution(self) -> str:
        """Human-readable resolution setting."""
        if self.train_height:
            return f"height {self.train_height}"
        return f"factor {self.resolution_factor:g}" if self.resolution_factor else "from COLMAP"


def repo_root() -> Path:
    """The repository holding ``datasets/``: above the package if there, else the current directory."""
    return REPO_ROOT if (REPO_ROOT / "datasets").is_dir() else Path.cwd()


def datasets_dir() -> Path:
    return repo_root() / "datasets"


def _load_spec(path: Path) -> DatasetSpec:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise BenchError(f"{path}: expected a readable YAML dataset entry ({str(err).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise BenchError(f"{path}: expected a mapping with name, layout, scenes, blur_type, protocol")
    try:
        spec = DatasetSpec.model_validate({**raw, "source": path})
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise BenchError(f"{path}: key {loc}: {first['msg']}") from None
    if spec.name != path.stem:
        raise BenchError(f"{path}: key name: expected {path.stem!r} (the file name), got {spec.name!r}")
    return spec


def list_datasets() -> list[DatasetSpec]:
    """Every dataset in ``datasets/*.yaml``, sorted by name."""
    return [_load_spec(p) for p in sorted(datasets_dir().glob("*.yaml"))]


def get_dataset(name: str) -> DatasetSpec:
    """The dataset called ``name``; BenchError listing the known names otherwise."""
    path = datasets_dir() / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(datasets_dir().glob("*.yaml")))
        raise BenchError(f"dataset {name!r}: unknown (known: {known})")
    return _load_spec(path)


def data_root(name: str, override: str | os.PathLike | None = None) -> Path:
    """Where dataset ``name`` lives: override > $BENCH_DATA/<name> > the YAML's data_root.

    ``override`` (``--data-root``, a sweep's ``data_root``) is the dataset's own folder. Given the
    parent of dataset folders instead (``DIR/<name>`` exists and ``DIR`` holds none of the dataset's
    scenes), ``DIR/<name>`` is used and a note on stderr says so."""
    if override:
        return _own_folder(name, Path(override).expanduser())
    env = os.environ.get("BENCH_DATA")
    if env:
        return Path(env).expanduser() / name
    spec = get_dataset(name)
    rel = Path(spec.data_root or f"datasets/data/{name}")
    return rel if rel.is_absolute() else repo_root() / rel


def dataset_folder(name: str, parent: str | os.PathLike | None = None) -> Path:
    """Dataset ``name``'s folder under ``parent``, the parent of every dataset's folder (``--data-parent``,
    used as $BENCH_DATA is), or its default (:func:`data_root`) without one."""
    return data_root(name, Path(parent) / name if parent else None)


_root = data_root  # the parameter called data_root below shadows the function
_noted: set[tuple[str, Path]] = set()


def _own_folder(name: str, given: Path) -> Path:
    """``given`` when it is dataset ``name``'s folder; ``given/name`` when ``given`` is the parent."""
    inner = given / name
    if not inner.is_dir() or any((given / s).exists() for s in get_dataset(name).scene_names):
        return given
    if (name, given) not in _noted:
        _noted.add((name, given))
        print(f"note: --data-root {given}: a parent of dataset folders; using {inner} (--data-root is the "
              f"dataset's own folder; the parent of every dataset is --data-parent or $BENCH_DATA)",
              file=sys.stderr)
    return inner


def _layout_module(layout: str):
    import importlib

    return importlib.import_module(f"bench.data.{layout}")


def layout_options(spec: DatasetSpec, layout: str) -> dict:
    """Keyword options of a layout's check/load from the dataset spec."""
    if layout == "dyblurf":
        return {"height": spec.train_height or 288, "disparity": spec.disparity}
    if layout == "d2rf":
        return {"factor": int(spec.resolution_factor or 2), "disparity": spec.disparity}
    return {"factor": spec.resolution_factor if spec.layout == "d4dgs" else None}  # None: from COLMAP


def check_scene(dataset: str, scene: str, data_root: str | os.PathLike | None = None) -> list[str]:
    """Problems of one scene on disk, one line each naming the file and the expectation ([] = ok)."""
    spec = get_dataset(dataset)
    sc = spec.scene(scene)
    root = _root(dataset, data_root)
    if spec.layout == "synthetic":
        from bench.data import synthetic

        return synthetic.check(root, sc, layout_options(spec, sc.layout))
    problems = _layout_module(sc.layout).check(root, scene, **layout_options(spec, sc.layout))
    if problems and not (root / scene).exists():
        return [f"{root / scene}: scene folder not found (dataset {dataset}, {sc.layout} layout); "
                f"put the data there or pass --data-root / set $BENCH_DATA"]
    return problems


def blur_type_of(dataset: str, scene: str) -> str | None:
    """The blur type of a registered scene; BenchError naming the dataset or the scene when either
    is unknown (training asks before it writes anything)."""
    return get_dataset(dataset).scene(scene).blur_type


def load_scene(dataset: str, scene: str, data_root: str | os.PathLike | None = None):
    """Validate then load one scene as ``bench.data.scene.Scene``.

    Synthetic scenes are generated into the data root on first use (only the requested scene).
    Raises BenchError with one line per problem.
    """
    spec = get_dataset(dataset)
    sc = spec.scene(scene)
    root = _root(dataset, data_root)
    if spec.layout == "synthetic":
        from bench.data import synthetic

        synthetic.ensure(root, [sc])
    problems = check_scene(dataset, scene, root)
    if problems:
        raise BenchError("\n".join(problems))
    opts = layout_options(spec, sc.layout)
    if spec.layout == "synthetic":
        from bench.data import synthetic

        return synthetic.load(root, sc, opts, dataset=dataset)
    return _layout_module(sc.layout).load(root, scene, dataset=dataset, blur_type=sc.blur_type, **opts)
