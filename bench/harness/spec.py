"""Sweep files: schema, loading with line numbers, and validation against the registries.

A sweep YAML names the variants, datasets (optionally a subset of scenes), seeds, overrides, the
executor with its resources, and the output root. Everything is checked before anything runs:
an unknown key, variant, dataset, scene or override key is one :class:`BenchError` naming the
file, the line and the allowed values. Example (every key, with its default or a typical value)::

    name: demo
    output_root: results          # relative to the current directory
    profile: cpu                  # a named method profile (bench.method.config.PROFILES)
    variants: all                 # or a list of methods/*.yaml names
    datasets:
      - name: synthetic
        scenes: [motion_0, motion_1, defocus_0, defocus_1]   # default: all scenes
        variants: null            # subset of the sweep's variants for these scenes (default: all)
        overrides: {}             # per-dataset method overrides (dotted keys)
        data_root: null           # default: $BENCH_DATA/<name> or datasets/data/<name>
        resources: {}             # per-dataset changes to executor.resources
        protocol: null            # evaluation protocol of these scenes (default: the sweep's protocol)
    seeds: [0, 1, 2]
    protocol: null                # evaluation protocol of every run, a key of bench/metrics/protocols.py
                                  # (default: each dataset's own; results.json names the one used)
    reference: full               # variant the paired statistics compare against (default: full)
    overrides: {}                 # method overrides for every run, e.g. {train.steps: 2000}
    executor:
      kind: local                 # auto | slurm | local | debug
      device: cpu                 # auto | cpu | cuda
      max_concurrent: 2           # local queue cap (default: number of GPUs; on CPU, usable cores / cpus_per_task)
      resources: {cpus_per_task: 1, mem_gb: 4, time_min: 60, array_parallelism: 2}

A dataset may be listed twice (say, two data roots) when its scene lists are disjoint.

This module imports no torch (planning 10,000 runs must stay fast).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from bench.errors import BenchError
from bench.harness.executors.registry import AUTO, executor_names  # names only: imports no backend

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
Scalar = str | int | float | bool | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Resources(_Strict):
    """What one run asks of the machine. Never part of a run's identity."""

    partition: str | None = Field(None, description="SLURM partition")
    account: str | None = Field(None, description="SLURM account")
    qos: str | None = Field(None, description="SLURM quality of service")
    constraint: str | None = Field(None, description="SLURM node constraint")
    gpus_per_node: int = Field(0, ge=0, description="GPUs per run")
    cpus_per_task: int = Field(1, ge=1, description="CPU cores per run (also torch threads)")
    mem_gb: float | None = Field(None, gt=0, description="memory per run")
    time_min: int = Field(60, ge=1, description="time limit per job (it requeues from checkpoints)")
    array_parallelism: int = Field(64, ge=1, description="runs of one job array at once")
    signal_delay_s: int = Field(90, ge=1, description="USR2 this long before the time limit")
    setup: list[str] = Field(default_factory=list, description="shell lines run before each job")
    additional: dict[str, Scalar] = Field(default_factory=dict, description="extra sbatch options")
    # gsplat's CUDA extension on SLURM (bench.harness.gsplat_build); one value per sweep, not per dataset.
    gsplat_build: Literal["auto", "here", "job", "off"] = Field(
        "auto", description="build gsplat's CUDA extension once before the arrays: here, in a build job "
                            "they wait for, auto (here when this node has a GPU, else a job), or off")
    torch_extensions_dir: str | None = Field(
        None, description="shared TORCH_EXTENSIONS_DIR of the jobs (default: $TORCH_EXTENSIONS_DIR, "
                          "else <output_root>/<name>/torch_extensions)")
    cuda_arch_list: str | None = Field(
        None, description='TORCH_CUDA_ARCH_LIST of the jobs and the build, e.g. "9.0" for H100/H200')


class ResourcesPatch(_Strict):
    """Per-dataset changes to :class:`Resources` (only the keys given)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    gpus_per_node: int | None = Field(None, ge=0)
    cpus_per_task: int | None = Field(None, ge=1)
    mem_gb: float | None = Field(None, gt=0)
    time_min: int | None = Field(None, ge=1)
    array_parallelism: int | None = Field(None, ge=1)
    signal_delay_s: int | None = Field(None, ge=1)
    setup: list[str] | None = None
    additional: dict[str, Scalar] | None = None


class ExecutorSpec(_Strict):
    kind: str = Field("auto", description="auto, or an executor of bench.harness.executors.registry")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    max_concurrent: int | None = Field(None, ge=1, description="local queue cap (default: GPUs; on CPU, usable cores / cpus_per_task)")
    resources: Resources = Field(default_factory=Resources)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        names = (AUTO, *executor_names())
        if kind not in names:
            raise ValueError("Input should be " + ", ".join(repr(n) for n in names[:-1]) + f" or {names[-1]!r}")
        return kind


class DatasetEntry(_Strict):
    name: str
    scenes: list[str] | None = Field(None, description="subset of scenes (default: all)")
    variants: list[str] | None = Field(None, description="subset of the sweep's variants run on these scenes "
                                                         "(default: all of them)")
    data_root: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    resources: ResourcesPatch | None = None
    protocol: str | None = Field(None, description="evaluation protocol of these scenes (default: the sweep's)")


class SweepSpec(_Strict):
    """The parsed sweep file; ``path`` and ``lines`` are filled by :func:`load_sweep`."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    output_root: str = "results"
    profile: str | None = None
    variants: list[str] | str = Field(description='"all" or a list of variant names')
    datasets: list[DatasetEntry] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    overrides: dict[str, Any] = Field(default_factory=dict)
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)
    reference: str = Field("full", description="variant the paired statistics compare against (bench compare)")
    protocol: str | None = Field(None, description="evaluation protocol of every run (default: each dataset's own)")

    @field_validator("variants")
    @classmethod
    def _all_or_list(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, str) and value != "all":
            raise ValueError(f"expected 'all' or a list of variant names, got {value!r}")
        return value

    @field_validator("datasets", mode="before")
    @classmethod
    def _names_as_entries(cls, value: Any) -> Any:
        # "- synthetic" is shorthand for "- name: synthetic".
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("variants", "seeds")
    @classmethod
    def _unique(cls, value: Any) -> Any:
        if isinstance(value, list):
            dupes = sorted({str(v) for v in value if value.count(v) > 1})
            if dupes:
                raise ValueError(f"listed twice: {', '.join(dupes)}")
        return value

    @field_validator("datasets")
    @classmethod
    def _disjoint(cls, value: list[DatasetEntry]) -> list[DatasetEntry]:
        # A dataset may appear twice (e.g. two data roots) only with explicit, disjoint scenes.
        seen: dict[str, set[str] | None] = {}
        for entry in value:
            if entry.name in seen:
                before = seen[entry.name]
                if before is None or entry.scenes is None or before & set(entry.scenes):
                    raise ValueError(f"dataset {entry.name} listed twice with overlapping scenes "
                                     "(repeat a dataset only with disjoint scene lists)")
                before.update(entry.scenes)
            else:
                seen[entry.name] = None if entry.scenes is None else set(entry.scenes)
        return value

    # Not part of the schema: where the file came from, and the line of every key path.
    _path: Path | None = PrivateAttr(None)
    _lines: dict[tuple, int] = PrivateAttr(default_factory=dict)

    @property
    def path(self) -> Path | None:
        return self._path

    def line(self, *loc: Any) -> int | None:
        """The line of the deepest known prefix of ``loc`` in the file (1-based)."""
        for n in range(len(loc), -1, -1):
            if tuple(loc[:n]) in self._lines:
                return self._lines[tuple(loc[:n])]
        return None

    def where(self, *loc: Any) -> str:
        """``file:line`` of a key path, for error messages."""
        line = self.line(*loc)
        return f"{self._path}:{line}" if line else str(self._path)

    def protocol_for(self, entry: DatasetEntry) -> str | None:
        """The evaluation protocol the sweep names for ``entry``'s runs (None: the dataset's own)."""
        return entry.protocol or self.protocol

    def resources_for(self, entry: DatasetEntry) -> Resources:
        base = self.executor.resources
        if entry.resources is None:
            return base
        return base.model_copy(update=entry.resources.model_dump(exclude_unset=True))

    def output_dir(self, output_root: str | os.PathLike | None = None) -> Path:
        """``<output_root>/<name>``; relative roots are relative to the current directory."""
        return Path(output_root or self.output_root).expanduser().absolute() / self.name


def _node_lines(node: yaml.Node, path: tuple, out: dict[tuple, int]) -> None:
    """Record the 1-based line of every mapping key and sequence item under ``node``."""
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[path + (key.value,)] = key.start_mark.line + 1
            _node_lines(value, path + (key.value,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[path + (i,)] = item.start_mark.line + 1
            _node_lines(item, path + (i,), out)


def _first_error(err: ValidationError, path: Path, lines: dict[tuple, int]) -> BenchError:
    # An unknown key says more than the "missing" error a misspelt required key also causes.
    errors = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = tuple(p for p in first["loc"] if p not in ("list[str]", "str"))
    line = next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), None)
    key = ".".join(str(p) for p in loc) or "(top level)"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        model = _model_at(loc[:-1])
        msg = f"unknown key; allowed keys: {', '.join(model.model_fields)}"
    elif first["type"] == "missing":
        msg = "required key missing"
    where = f"{path}:{line}" if line else str(path)
    return BenchError(f"{where}: {key}: {msg}")


def _model_at(loc: tuple) -> type[BaseModel]:
    """The pydantic model describing the mapping at key path ``loc`` (for 'allowed keys')."""
    model: type[BaseModel] = SweepSpec
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            break
        sub = {"executor": ExecutorSpec, "resources": Resources if model is ExecutorSpec else ResourcesPatch,
               "datasets": DatasetEntry}.get(part)
        if sub is None:
            break
        model = sub
    return model


def parse_sweep(path: str | os.PathLike) -> SweepSpec:
    """Read and schema-check a sweep file (no registry look-ups)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise BenchError(f"{path}: cannot read sweep file ({err.strerror})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise BenchError(f"{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(data, dict):
        raise BenchError(f"{path}: expected a mapping with keys {', '.join(SweepSpec.model_fields)}")
    lines: dict[tuple, int] = {}
    _node_lines(node, (), lines)
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as err:
        raise _first_error(err, path, lines) from None
    spec._path = path
    spec._lines = lines
    return spec


def load_sweep(path: str | os.PathLike) -> SweepSpec:
    """Parse a sweep file and check every name in it against the registries."""
    spec = parse_sweep(path)
    validate_names(spec)
    return spec


def validate_names(spec: SweepSpec) -> None:
    """Variants, datasets, scenes, profile and override keys exist; BenchError otherwise."""
    from bench.data.registry import list_datasets
    from bench.method.config import PROFILES, resolve_config
    from bench.method.registry import list_methods

    known = [m.name for m in list_methods()]
    if spec.profile is not None and spec.profile not in PROFILES:
        raise BenchError(f"{spec.where('profile')}: profile {spec.profile!r}: unknown; "
                         f"allowed: {', '.join(PROFILES)}")
    if isinstance(spec.variants, list):
        for i, name in enumerate(spec.variants):
            if name not in known:
                raise BenchError(f"{spec.where('variants', i)}: variant {name!r}: unknown; "
                                 f"allowed: all, {', '.join(known)}")
    if "reference" in spec.model_fields_set and spec.reference not in variant_names(spec):
        raise BenchError(f"{spec.where('reference')}: reference {spec.reference!r}: not a variant of this sweep; "
                         f"allowed: {', '.join(variant_names(spec))}")
    _check_protocols(spec)
    datasets = {d.name: d for d in list_datasets()}
    for i, entry in enumerate(spec.datasets):
        if entry.name not in datasets:
            raise BenchError(f"{spec.where('datasets', i, 'name')}: dataset {entry.name!r}: unknown; "
                             f"allowed: {', '.join(datasets)}")
        for j, name in enumerate(entry.variants or []):
            if name not in variant_names(spec):
                raise BenchError(f"{spec.where('datasets', i, 'variants', j)}: variant {name!r}: not a variant "
                                 f"of this sweep; allowed: {', '.join(variant_names(spec))}")
        scenes = [s.name for s in datasets[entry.name].scenes]
        for j, scene in enumerate(entry.scenes or []):
            if scene not in scenes:
                raise BenchError(f"{spec.where('datasets', i, 'scenes', j)}: scene {scene!r} of "
                                 f"{entry.name}: unknown; allowed: {', '.join(scenes)}")
    # Each override key on its own, so the error points at its line.
    layers = [(("overrides",), spec.overrides)] + [
        (("datasets", i, "overrides"), e.overrides) for i, e in enumerate(spec.datasets)]
    for loc, layer in layers:
        for key, value in layer.items():
            try:
                resolve_config(None, spec.profile, {key: value})
            except BenchError as err:
                # Drop resolve_config's own "override: " / "config: " source prefix.
                msg = str(err).split(": ", 1)[-1] if str(err).startswith(("override", "config")) else err
                raise BenchError(f"{spec.where(*loc, key)}: {'.'.join(map(str, loc))}: {msg}") from None


def _check_protocols(spec: SweepSpec) -> None:
    """The sweep's and each dataset's ``protocol`` name an evaluation protocol; BenchError otherwise."""
    from bench.metrics.protocols import PROTOCOLS

    keys = [(("protocol",), spec.protocol)] + [(("datasets", i, "protocol"), e.protocol)
                                                for i, e in enumerate(spec.datasets)]
    for loc, name in keys:
        if name is not None and name not in PROTOCOLS:
            raise BenchError(f"{spec.where(*loc)}: {'.'.join(map(str, loc))}: protocol {name!r}: unknown; "
                             f"allowed: {', '.join(PROTOCOLS)}")


def variant_names(spec: SweepSpec) -> list[str]:
    """The sweep's variants in file order ("all" = every registered variant, by name)."""
    if spec.variants == "all":
        from bench.method.registry import list_methods

        return [m.name for m in list_methods()]
    return list(spec.variants)
