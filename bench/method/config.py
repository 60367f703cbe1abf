"""The method's typed configuration: release defaults (docs/method.md §9), profiles, overrides.

Every point in the training schedule is a *fraction* of ``train.steps`` (``*_frac`` fields), so a
short CPU run keeps the shape of the 40k-step release schedule; :meth:`MethodConfig.at` turns a
fraction into a step. Resolution order (later wins)::

    release defaults  <-  profile  <-  variant overrides (methods/*.yaml)  <-  user overrides

Overrides are flat dotted keys (``{"train.steps": 2000}``); an unknown key or a bad value is a
:class:`~bench.errors.BenchError` naming the key and the closest allowed ones (:func:`check_keys`).
This module must not import torch (listing variants and resolving configs stays cheap).
"""

from __future__ import annotations

import difflib
import hashlib
import math
import json
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bench.errors import BenchError

Frac = float  # a point or interval of the schedule as a fraction of train.steps


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Section):
    """Gaussian scene model and its initialisation (docs/method.md §2)."""

    sh_degree: int = Field(3, ge=0, le=3, description="highest SH degree")
    sh_increase_every_frac: Frac = Field(1000 / 40000, gt=0, description="raise SH degree every ...")
    num_motion_bases: int = Field(20, ge=1, description="B shared SE(3) motion bases")
    init_static_points: int = Field(40000, ge=1, description="max static Gaussians from depth")
    init_dynamic_points: int = Field(20000, ge=0, description="max dynamic Gaussians from depth")
    init_opacity: float = Field(0.1, gt=0, lt=1, description="initial opacity of every Gaussian")
    init_scale_factor: float = Field(1.0, gt=0, description="init scale = factor * RMS distance to the "
                                                                  "3 nearest initial points")
    dynamic_mask_check: Literal["none", "depth"] = Field(
        "depth", description="[ours] depth: mask pixels whose depth matches the static surface other frames "
                             "see there are not moving (masks cover the whole exposure); none: every mask "
                             "pixel is (docs/method.md §2)")
    dynamic_mask_depth_tol: float = Field(0.05, gt=0, lt=1, description="[ours] relative depth difference "
                                                                          "within which a point matches "
                                                                          "static surface")
    motion_init: Literal["auto", "identity"] = Field(
        "auto", description="auto: tracks > flow > identity; identity: learn bases from scratch")


class BlurConfig(_Section):
    """BP-Net and blur formation (docs/method.md §3-4). ``enabled=false`` = no blur module at all."""

    enabled: bool = True
    kernel_size: int = Field(9, ge=1, description="K, odd")
    kernel_type: Literal["full", "defocus", "motion"] = "full"
    shortcut: bool = True
    cnn_width: int = Field(64, ge=1, description="hidden channels of the scene-feature CNN")
    init_centre: float = Field(0.9, gt=0, lt=1, description="[ours] initial centre weight of the full kernel; "
                                                          "the parametric families start mid-range (docs/method.md §3)")
    init_mask: float = Field(0.1, gt=0, lt=1, description="[ours] initial blur mask")
    start_frac: Frac = Field(3500 / 40000, ge=0, le=1, description="BP-Net joins the loss")
    lr: float = Field(5e-4, gt=0)
    lr_final: float = Field(1e-5, gt=0)
    lr_decay_frac: Frac = Field(35000 / 40000, gt=0, description="lr reaches lr_final after ...")
    ground_truth: bool = Field(False, description="[ours] diagnostic: train through the scene's true blur "
                                                  "instead of BP-Net (synthetic motion/defocus scenes)")
    embedding_lr_scale: float = Field(1.0, gt=0, description="[ours] lr multiplier of the per-frame "
                                                              "camera embedding (1 = release)")


class LossConfig(_Section):
    """Loss weights and start points (docs/method.md §5)."""

    ssim_lambda: float = Field(0.2, ge=0, le=1, description="rec = (1-l)*L1 + l*(1-SSIM)")
    blur_sparsity: float = Field(1e-3, ge=0)
    blur_sparsity_start_frac: Frac = Field(5500 / 40000, ge=0, le=1)
    mask_sparsity: float = Field(1e-3, ge=0)
    mask_sparsity_start_frac: Frac = Field(3500 / 40000, ge=0, le=1)
    depth: float = Field(0.075, ge=0, description="trimmed L1 on disparity")
    dynamic_mask: float = Field(0.075, ge=0, description="trimmed L1 on the dynamic mask")
    trim_fraction: float = Field(0.02, ge=0, lt=1, description="largest residuals dropped")
    low_frequency: float = Field(0.1, ge=0)
    low_frequency_start_frac: Frac = Field(4500 / 40000, ge=0, le=1)
    low_frequency_factor: int = Field(4, ge=1, description="area downsampling factor")
    se3_smoothness: float = Field(0.0, ge=0, description="mean second-difference norm of the motion bases' "
                                                         "6D rotations (x1) and translations (x2) over "
                                                         "frames; 0 in the release, 0.075 earlier")
    track_smoothness: float = Field(0.0, ge=0, description="mean second-difference norm of the dynamic "
                                                           "means at frames t-1, t, t+1; 0 in the "
                                                           "release, 0.2 earlier")
    z_acceleration: float = Field(0.0, ge=0, description="squared velocity of the dynamic means along "
                                                         "the camera ray over t-1, t, t+1 (upstream's "
                                                         "name); 0 in the release, 1.0 earlier")


class DensifyConfig(_Section):
    """Adaptive density control and dynamic Gaussian densification (docs/method.md §6)."""

    enabled: bool = Field(True, description="standard adaptive density control")
    start_frac: Frac = Field(500 / 40000, ge=0, le=1)
    end_frac: Frac = Field(15000 / 40000, ge=0, le=1)
    every_frac: Frac = Field(100 / 40000, gt=0)
    grad_threshold: float = Field(2e-4, gt=0, description="growth threshold on the mean norm of the 2D-mean "
                                                          "gradient in normalised device units (x W/2, x H/2)")
    percent_dense: float = Field(0.01, gt=0, description="clone below, split above x extent")
    prune_opacity: float = Field(0.005, ge=0, lt=1)
    prune_scale_frac_extent: float = Field(0.1, gt=0, description="prune world scale above x extent")
    prune_big_after_frac: Frac = Field(3000 / 40000, ge=0, le=1)
    opacity_reset_every_frac: Frac = Field(3000 / 40000, gt=0)
    max_gaussians: int = Field(0, ge=0, description="cap on the count (0 = unlimited)")
    cap_schedule: Literal["constant", "linear"] = Field(
        "constant", description="[ours] constant: the cap holds throughout; linear: it rises from the initial "
                                "count to max_gaussians over the densification window")
    dgd: bool = Field(True, description="dynamic Gaussian densification (paper; off upstream)")
    dgd_at_frac: Frac = Field(2500 / 40000, ge=0, le=1)
    dgd_points_per_view: int = Field(1000, ge=1)
    dgd_opacity: float = Field(0.7, gt=0, lt=1, description="opacity of DGD's Gaussians with "
                                                           "dgd_opacity_rule=fixed (upstream 0.7)")
    dgd_opacity_rule: Literal["fixed", "matched"] = Field(
        "matched", description="[ours] matched: the median opacity of the current dynamic Gaussians; "
                               "fixed: dgd_opacity (docs/method.md §6)")
    dgd_scale: Literal["spacing", "pixel"] = Field(
        "pixel", description="[ours] pixel: footprint z/f x the dynamic Gaussians' median size in pixels; "
                             "spacing: footprint x the sampling spacing (earlier rule)")
    dgd_sampling: Literal["uniform", "missing"] = Field(
        "missing", description="[ours] missing: weighted by 1 - the dynamic Gaussians' accumulated alpha, "
                               "as many as the missing alpha sums to; uniform: over the moving pixels")


class UnseenConfig(_Section):
    """Pseudo unseen views from forward-warped training frames (docs/method.md §7)."""

    enabled: bool = True
    every: int = Field(5, ge=1, description="every n-th step uses a virtual view")
    start_frac: Frac = Field(3000 / 40000, ge=0, le=1)
    end_frac: Frac = Field(1.0, ge=0, le=1)
    perpendicular_offset_depth: float = Field(
        0.03, ge=0, description="[ours] shift of the two side views as a fraction of the training frames' "
                                "median depth (upstream: 0.5 in its own scene units)")
    side_direction: Literal["camera_x", "trajectory"] = Field(
        "camera_x", description="[ours] camera_x: side views along the source camera's x axis (the stereo "
                                "baseline); trajectory: orthogonal to the optical axis and the trajectory "
                                "(upstream)")
    inpaint_radius: int = Field(3, ge=1, description="OpenCV inpainting radius (px)")
    skip_virtual_steps: bool = Field(
        False, description="[ours] with enabled=false: the steps that would train on a virtual view make no "
                           "update, so the run takes as many real steps as one with virtual views "
                           "(variant unseen_matched_steps)")


class OptimConfig(_Section):
    """Adam learning rates (docs/method.md §8)."""

    eps: float = Field(1e-15, gt=0)
    means: float = Field(1.6e-4 * 5, gt=0)
    means_final: float = Field(1.6e-6 * 5, gt=0)
    means_decay_frac: Frac = Field(30000 / 40000, gt=0)
    sh_dc: float = Field(2.5e-3, gt=0)
    sh_rest: float = Field(2.5e-3 / 20, gt=0)
    opacity: float = Field(0.05, gt=0)
    scales: float = Field(5e-3, gt=0)
    rotations: float = Field(1e-3, gt=0)
    motion_coefs: float = Field(1e-2, gt=0)
    motion_bases: float = Field(1.6e-4, gt=0)


class TrainConfig(_Section):
    """Run length, bookkeeping and resources."""

    steps: int = Field(40000, ge=1)
    checkpoint_every: int = Field(5000, ge=1, description="steps between atomic checkpoints")
    log_every: int = Field(100, ge=1, description="steps between curves.csv rows")
    num_train_renders: int = Field(3, ge=0, description="training views saved with kernels")
    num_threads: int = Field(0, ge=0, description="torch CPU threads (0 = torch default); "
                                                  "env BENCH_TORCH_THREADS wins")
    backend: Literal["auto", "torch", "gsplat"] = "auto"


class EvalConfig(_Section):
    """How the reported test metrics are produced (docs/method.md §12). The defaults are what this
    project reports; the other settings reproduce evaluation practices of published code so that
    their effect can be measured, and every result records which one produced it."""

    select: Literal["last", "best_test"] = Field(
        "last", description="last: the model at the end of training; best_test: the state with the best mean "
                            "test PSNR among evaluations on the upstream schedule (3600, 4000, 5000, 6000, "
                            "then every 1000 to 40000 of 40000 steps, scaled to train.steps), as dydeblur's "
                            "train.py keeps it; selected on the test set, so optimistic")
    refine_test_poses: int = Field(
        0, ge=0, description="steps of test-time pose refinement (0 = none): each test camera optimised "
                             "against its ground-truth image with the model frozen (Deblur4DGS), scored "
                             "as its own evaluation mode")
    refine_lr: float = Field(1e-2, gt=0, description="Adam lr of the refinement (Deblur4DGS)")
    refine_lr_final: float = Field(1e-4, gt=0, description="cosine-annealed to this lr (Deblur4DGS)")


class MethodConfig(_Section):
    """The whole configuration of one method run."""

    model: ModelConfig = ModelConfig()
    blur: BlurConfig = BlurConfig()
    loss: LossConfig = LossConfig()
    densify: DensifyConfig = DensifyConfig()
    unseen: UnseenConfig = UnseenConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()

    def at(self, frac: float) -> int:
        """The step of a schedule fraction: ``frac * train.steps`` rounded half up."""
        return int(math.floor(frac * self.train.steps + 0.5))

    def every(self, frac: float) -> int:
        """An interval fraction as a step count, at least 1."""
        return max(1, self.at(frac))

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# Named profiles: flat dotted overrides on top of the release defaults.
PROFILES: dict[str, dict[str, Any]] = {
    "release": {},
    # Small CPU runs on the synthetic benchmark's 128x72 frames, one core, pure-PyTorch renderer.
    # Each departure from the release schedule shape says why; docs/method.md §9 lists them and
    # how to measure one (tests/perf/quality_bar.py); measured run times are in the README.
    "cpu": {
        "train.steps": 800,
        "train.checkpoint_every": 200,
        "train.log_every": 20,
        "train.num_threads": 1,
        "train.backend": "torch",
        "model.sh_degree": 1,
        "model.sh_increase_every_frac": 0.1,
        "model.num_motion_bases": 10,
        # Half the cap at the start (release ratio 2:1 static:dynamic), the cap reached at the end of the
        # densification window: adaptive density control grows and prunes over its whole window.
        "model.init_static_points": 3000,
        "model.init_dynamic_points": 1500,
        # Brighter start: with 50x fewer steps there is no time to grow opacity from 0.1.
        "model.init_opacity": 0.3,
        "densify.every_frac": 0.02,
        "densify.max_gaussians": 9000,
        "densify.cap_schedule": "linear",
        "densify.dgd_points_per_view": 40,
        # No opacity reset: recovering from it takes a few hundred steps, a third of the run.
        "densify.opacity_reset_every_frac": 1.0,
        # 50x fewer steps: larger position/basis steps keep the distance travelled comparable.
        "optim.means": 1.6e-3,
        "optim.means_final": 1.6e-5,
        "optim.motion_bases": 1.6e-3,
        # A real initial blur. From the release's small one (mask 0.1, centre 0.9) the mask
        # collapses to 0 within the short run and `full` becomes `no_blur`. BP-Net keeps the
        # release's start (3500/40000): started at step 0, while the render is still blurrier
        # than the frames, it learns "less blur" and on some seeds the mask of half the frames
        # falls to 0, where it has no gradient left (docs/method.md §9).
        "blur.init_mask": 0.5,
        "blur.init_centre": 0.5,
        "blur.cnn_width": 16,
        # No BP-Net lr decay. The release decays it 50x over 35k steps; over 800 steps that leaves
        # BP-Net about 150 steps at a useful lr, and the per-frame kernels stay isotropic and too
        # small. At a constant lr it learns the frames' anisotropic motion blur (effect measured as in
        # docs/method.md §9).
        "blur.lr_final": 5e-4,
        # Each frame's camera embedding is updated only on that frame's ~40 steps: at the release
        # lr it cannot move, so per-frame blur is not learnable. 50x keeps its travel comparable.
        "blur.embedding_lr_scale": 50.0,
    },
}
# The cpu profile run four times as long, everything else equal (every schedule point is a
# fraction of train.steps, so the schedule keeps its shape): it measures which of the cpu
# profile's conclusions depend on the schedule's length (README "Longer schedules").
PROFILES["cpu_long"] = {**PROFILES["cpu"], "train.steps": 3200, "train.checkpoint_every": 800,
                        "train.log_every": 80}


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def allowed_keys() -> list[str]:
    """Every dotted key an override may set."""
    return sorted(flatten(MethodConfig().to_dict()))


# Where a user finds every key; an error names the closest few instead of all of them.
KEYS_LISTED = "every key with its value: bench train --show-config"


def check_keys(keys, source: str) -> None:
    """BenchError for the first of ``keys`` that is no config key: ``source`` (``--set``, a file and
    line), the key, "did you mean" with the closest few (a bare ``steps`` finds ``train.steps``)
    and :data:`KEYS_LISTED`; one short line rather than the 70 keys."""
    known = allowed_keys()
    for key in keys:
        if key in known:
            continue
        same_name = [k for k in known if k.split(".", 1)[1] == key.split(".")[-1]]
        close = list(dict.fromkeys(same_name + difflib.get_close_matches(key, known, n=3, cutoff=0.6)))[:3]
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise BenchError(f"{source}: unknown config key {key!r}{hint} ({KEYS_LISTED})")


def _apply(data: dict[str, Any], overrides: dict[str, Any], source: str) -> None:
    check_keys(overrides, source)
    for key, value in overrides.items():
        section, name = key.split(".", 1)
        data[section][name] = value


def resolve_config(method: str | None = None, profile: str | None = None,
                   overrides: dict[str, Any] | None = None) -> MethodConfig:
    """The validated config of variant ``method`` under ``profile`` with user ``overrides``.

    ``method=None`` skips variant overrides (base defaults). Raises BenchError on an unknown
    variant, profile or key, or a value of the wrong type/range.
    """
    data = MethodConfig().to_dict()
    layers: list[tuple[str, dict[str, Any]]] = []
    if profile is not None:
        if profile not in PROFILES:
            raise BenchError(f"profile {profile!r}: unknown; known profiles: {', '.join(PROFILES)}")
        layers.append((f"profile {profile}", PROFILES[profile]))
    if method is not None:
        from bench.method.registry import get_method

        spec = get_method(method)
        layers.append((f"methods/{spec.name}.yaml overrides", spec.overrides))
    layers.append(("override", dict(overrides or {})))
    for source, layer in layers:
        _apply(data, layer, source)
    return validate(data, "config")


def validate(data: dict[str, Any], source: str) -> MethodConfig:
    """``MethodConfig.model_validate`` with errors turned into one-line BenchErrors."""
    try:
        cfg = MethodConfig.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise BenchError(f"{source}: {key}={first.get('input')!r}: {first['msg']}") from None
    if cfg.unseen.enabled and cfg.unseen.skip_virtual_steps:
        raise BenchError(f"{source}: unseen.skip_virtual_steps=true needs unseen.enabled=false "
                         f"(it replaces the virtual steps by skipped ones)")
    if cfg.blur.kernel_size % 2 == 0:
        raise BenchError(f"{source}: blur.kernel_size={cfg.blur.kernel_size}: expected an odd number")
    return cfg


def parse_value(text: str) -> Any:
    """A ``--set key=value`` value: YAML scalar parsing (``1e-3`` -> float, ``false`` -> bool)."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    # PyYAML reads "1e-3" as a string (YAML 1.1); numbers are what users mean.
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["a.b=1", ...]`` -> ``{"a.b": 1}``; BenchError on a malformed item."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BenchError(f"--set {item!r}: expected key=value, e.g. train.steps=2000")
        out[key.strip()] = parse_value(value.strip())
    return out


def config_hash(d: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able dict (sorted keys)."""
    text = json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_hash(variant: str, config: dict[str, Any], dataset: str, scene: str, seed: int) -> str:
    """A run's identity: the hash of its resolved config, variant, dataset, scene and seed.

    The one definition: training writes it into config.yaml (and refuses a directory holding
    another), the harness names and skips runs by it (through :func:`run_hasher`, the same
    function with the config serialised once). The ``eval`` section counts only when it differs
    from its defaults: it was added after runs existed, and a run evaluated the default way keeps
    the identity it had before.
    """
    return run_hasher(variant, config)(dataset, scene, seed)


def run_hasher(variant: str, config: dict[str, Any]) -> Callable[[str, str, int], str]:
    """:func:`run_hash` of ``variant`` and ``config`` as a function of (dataset, scene, seed).

    The hashed text is :func:`config_hash`'s sorted compact JSON of ``{"config", "dataset",
    "method", "scene", "seed"}``; the config part (most of it) is serialised once here, and each
    call appends the run's fields in that sorted key order. A sweep of 10,000 runs shares a few
    configs, so planning serialises a few configs instead of 10,000.
    """
    if config.get("eval") == EvalConfig().model_dump(mode="json"):
        config = {k: v for k, v in config.items() if k != "eval"}
    head = json.dumps({"config": config}, sort_keys=True, separators=(",", ":"), default=str)[:-1]
    method = json.dumps(variant, default=str)

    def hash_run(dataset: str, scene: str, seed: int) -> str:
        text = (f'{head},"dataset":{json.dumps(dataset, default=str)},"method":{method},'
                f'"scene":{json.dumps(scene, default=str)},"seed":{int(seed)}}}')
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    return hash_run