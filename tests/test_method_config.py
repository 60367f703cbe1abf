"""Method config and variant registry: release defaults, resolution order, clear errors."""

import subprocess
import sys

import pytest

from bench.errors import BenchError
from bench.method.config import (MethodConfig, allowed_keys, check_keys, config_hash, parse_overrides,
                                 resolve_config)
from bench.method.registry import get_method, list_methods

VARIANTS = {"full", "no_sparsity", "no_densification", "no_unseen_views", "no_shortcut",
            "defocus_kernel", "motion_kernel", "no_blur", "smooth", "unseen_matched_steps"}


def test_release_defaults_match_method_md():
    cfg = resolve_config("full")
    assert cfg.train.steps == 40000
    assert cfg.blur.kernel_size == 9 and cfg.blur.kernel_type == "full" and cfg.blur.shortcut
    assert cfg.model.num_motion_bases == 20 and cfg.model.sh_degree == 3
    # Schedules as fractions land on the release step numbers.
    assert cfg.at(cfg.blur.start_frac) == 3500
    assert cfg.at(cfg.loss.blur_sparsity_start_frac) == 5500
    assert cfg.at(cfg.loss.mask_sparsity_start_frac) == 3500
    assert cfg.at(cfg.loss.low_frequency_start_frac) == 4500
    assert cfg.at(cfg.blur.lr_decay_frac) == 35000
    assert cfg.at(cfg.optim.means_decay_frac) == 30000
    assert (cfg.at(cfg.densify.start_frac), cfg.at(cfg.densify.end_frac)) == (500, 15000)
    assert cfg.every(cfg.densify.every_frac) == 100
    assert cfg.every(cfg.densify.opacity_reset_every_frac) == 3000
    assert cfg.at(cfg.densify.prune_big_after_frac) == 3000
    assert cfg.at(cfg.densify.dgd_at_frac) == 2500
    assert cfg.at(cfg.unseen.start_frac) == 3000 and cfg.unseen.every == 5
    assert cfg.every(cfg.model.sh_increase_every_frac) == 1000
    # Weights.
    L = cfg.loss
    assert (L.ssim_lambda, L.blur_sparsity, L.mask_sparsity) == (0.2, 1e-3, 1e-3)
    assert (L.depth, L.dynamic_mask, L.low_frequency, L.trim_fraction) == (0.075, 0.075, 0.1, 0.02)
    assert (L.se3_smoothness, L.track_smoothness, L.z_acceleration) == (0, 0, 0)
    d = cfg.densify
    assert (d.grad_threshold, d.prune_opacity, d.dgd_opacity, d.dgd_points_per_view) == (2e-4, 0.005, 0.7, 1000)
    assert d.dgd and d.enabled and cfg.unseen.enabled and cfg.unseen.perpendicular_offset_depth == 0.03
    # Learning rates.
    o = cfg.optim
    assert o.eps == 1e-15
    assert o.means == pytest.approx(8e-4) and o.means_final == pytest.approx(8e-6)
    assert (o.sh_dc, o.sh_rest, o.opacity, o.scales, o.rotations) == pytest.approx(
        (2.5e-3, 1.25e-4, 0.05, 5e-3, 1e-3))
    assert (o.motion_coefs, o.motion_bases) == pytest.approx((1e-2, 1.6e-4))
    assert (cfg.blur.lr, cfg.blur.lr_final) == (5e-4, 1e-5)


def test_schedule_shape_kept_by_short_runs():
    cfg = resolve_config("full", overrides={"train.steps": 4000})
    assert cfg.at(cfg.blur.start_frac) == 350 and cfg.at(cfg.densify.dgd_at_frac) == 250


def test_cpu_profile_keeps_the_release_blur_schedule():
    """BP-Net and its sparsity terms start where the release starts them (docs/method.md §9: started
    at step 0, the blur mask of half a scene's frames collapsed on some seeds)."""
    cfg = resolve_config("full", "cpu")
    starts = (cfg.blur.start_frac, cfg.loss.mask_sparsity_start_frac, cfg.loss.blur_sparsity_start_frac)
    assert [cfg.at(f) for f in starts] == [70, 70, 110]


def test_variants_listed_without_torch():
    code = ("import sys; from bench.method.registry import list_methods; "
            "from bench.method.config import resolve_config; "
            "[resolve_config(m.name, 'cpu') for m in list_methods()]; "
            "print(sorted(m.name for m in list_methods())); assert 'torch' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert set(eval(out.stdout)) == VARIANTS


def test_every_variant_has_base_description_and_applies_overrides():
    specs = {s.name: s for s in list_methods()}
    assert set(specs) == VARIANTS
    for spec in specs.values():
        assert spec.base == "dydeblur" and spec.description
    assert resolve_config("no_blur").blur.enabled is False
    assert resolve_config("no_shortcut").blur.shortcut is False
    assert resolve_config("defocus_kernel").blur.kernel_type == "defocus"
    assert resolve_config("motion_kernel").blur.kernel_type == "motion"
    assert resolve_config("no_sparsity").loss.blur_sparsity == 0
    nd = resolve_config("no_densification").densify
    assert nd.dgd is False and nd.enabled is True
    assert resolve_config("no_unseen_views").unseen.enabled is False
    ctrl = resolve_config("unseen_matched_steps").unseen
    assert ctrl.enabled is False and ctrl.skip_virtual_steps is True
    sm = resolve_config("smooth").loss
    assert (sm.se3_smoothness, sm.track_smoothness, sm.z_acceleration) == (0.075, 0.2, 1.0)


def test_resolution_order_profile_variant_user():
    cpu = resolve_config("full", "cpu")
    assert cpu.train.steps < 40000 and cpu.train.num_threads == 1
    # variant beats profile, user beats variant.
    cfg = resolve_config("no_blur", "cpu", {"blur.enabled": True, "train.steps": 7})
    assert cfg.blur.enabled is True and cfg.train.steps == 7
    assert resolve_config("no_blur", "cpu").blur.enabled is False


def test_unknown_variant_lists_known():
    with pytest.raises(BenchError) as err:
        get_method("nope")
    msg = str(err.value)
    assert "nope" in msg and all(v in msg for v in VARIANTS)
    with pytest.raises(BenchError):
        resolve_config("nope")


def test_unknown_key_suggests_the_closest_keys():
    with pytest.raises(BenchError) as err:
        resolve_config("full", overrides={"train.stepz": 3})
    msg = str(err.value)
    assert "train.stepz" in msg and "did you mean train.steps?" in msg and "\n" not in msg
    assert "bench train --show-config" in msg and "blur.lr" not in msg  # where the keys are, not all of them
    with pytest.raises(BenchError, match="profile"):
        resolve_config("full", "gpu_huge")


@pytest.mark.parametrize("key, source, suggested", [
    ("steps", "--set", ["train.steps"]),  # a bare name finds its section
    ("blur.kernal_size", "--set", ["blur.kernel_size"]),
    ("nothing_like_it", "sweep.yaml:4: overrides", []),
])
def test_check_keys_names_source_key_and_closest(key, source, suggested):
    check_keys(["train.steps", "blur.lr"], "--set")  # known keys pass
    with pytest.raises(BenchError) as err:
        check_keys(["train.steps", key], source)
    msg = str(err.value)
    assert msg.startswith(f"{source}: unknown config key {key!r}") and len(msg) < 200
    assert ("did you mean" in msg) == bool(suggested)
    assert all(k in msg for k in suggested)


@pytest.mark.parametrize("key,value", [("train.steps", -1), ("blur.kernel_type", "round"),
                                       ("blur.kernel_size", 8), ("loss.depth", "heavy")])
def test_bad_values_are_bench_errors(key, value):
    with pytest.raises(BenchError) as err:
        resolve_config("full", overrides={key: value})
    assert key in str(err.value)


def test_round_trip_and_hash():
    cfg = resolve_config("motion_kernel", "cpu")
    d = cfg.to_dict()
    assert MethodConfig.model_validate(d) == cfg
    assert config_hash(d) == config_hash(MethodConfig.model_validate(d).to_dict())
    assert config_hash(d) != config_hash(resolve_config("full", "cpu").to_dict())
    assert "train.steps" in allowed_keys()


def test_parse_overrides():
    got = parse_overrides(["train.steps=12", "blur.lr=1e-3", "blur.shortcut=false", "blur.kernel_type=motion"])
    assert got == {"train.steps": 12, "blur.lr": 1e-3, "blur.shortcut": False, "blur.kernel_type": "motion"}
    with pytest.raises(BenchError):
        parse_overrides(["train.steps"])


def test_component_rules_default_to_this_projects_and_keep_the_earlier_ones():
    """DGD, the moving-pixel check and the side views default to the rules of docs/method.md §11; the
    earlier rules (and upstream's side direction) stay reachable by key."""
    cfg = resolve_config("full")
    d = cfg.densify
    assert (d.dgd_scale, d.dgd_sampling, d.dgd_opacity_rule) == ("pixel", "missing", "matched")
    assert (cfg.model.dynamic_mask_check, cfg.model.dynamic_mask_depth_tol) == ("depth", 0.05)
    assert cfg.unseen.side_direction == "camera_x" and cfg.unseen.skip_virtual_steps is False
    old = resolve_config("full", "cpu", {"densify.dgd_scale": "spacing", "densify.dgd_sampling": "uniform",
                                         "densify.dgd_opacity_rule": "fixed", "model.dynamic_mask_check": "none",
                                         "unseen.side_direction": "trajectory"})
    assert old.densify.dgd_opacity == 0.7 and old.unseen.side_direction == "trajectory"
    with pytest.raises(BenchError, match="dgd_scale"):
        resolve_config("full", overrides={"densify.dgd_scale": "huge"})


def test_skipping_virtual_steps_needs_virtual_views_off():
    with pytest.raises(BenchError, match="skip_virtual_steps=true needs unseen.enabled=false"):
        resolve_config("full", overrides={"unseen.skip_virtual_steps": True})


@pytest.mark.parametrize("profile", ["cpu", None])
def test_matched_control_takes_as_many_real_steps_as_full(profile):
    from bench.method.step import step_counts

    full = step_counts(resolve_config("full", profile), virtual_views=True)
    ctrl = step_counts(resolve_config("unseen_matched_steps", profile), virtual_views=True)
    plain = step_counts(resolve_config("no_unseen_views", profile), virtual_views=True)
    steps = resolve_config("full", profile).train.steps
    assert ctrl["real"] == full["real"] and ctrl["skipped"] == full["virtual"] > 0 and ctrl["virtual"] == 0
    assert plain == {"real": steps, "virtual": 0, "skipped": 0}
    # every 5th step from 3000/40000 of the run: full trains on 18.5% fewer real frames than no_unseen_views
    assert full["virtual"] / steps == pytest.approx(0.185)
    # a scene without virtual views (no masks): neither runs skips anything
    assert step_counts(resolve_config("unseen_matched_steps", profile), virtual_views=False)["skipped"] == 0
