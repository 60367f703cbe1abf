"""Motion smoothness losses (bench/method/smoothness.py) on hand-made trajectories and in training."""

from __future__ import annotations

import math

import pytest
import torch

import bench.method.smoothness as SM
from bench.errors import BenchError
from bench.method.config import LossConfig, resolve_config
from bench.method.model import GaussianModel
from bench.method.motion import IDENTITY_6D, MotionBases
from method_tiny import curves, train_tiny

T = 5
ON = LossConfig(se3_smoothness=0.075, track_smoothness=0.2, z_acceleration=1.0)


def one_gaussian(trajectory, canonical=(0.0, 0.0, 2.0)) -> GaussianModel:
    """One dynamic Gaussian at ``canonical`` moved by a single translation-only basis along
    ``trajectory`` (T,3), plus one static Gaussian elsewhere that must not count."""
    bases = MotionBases(1, T)
    with torch.no_grad():
        bases.trans.copy_(torch.tensor(trajectory, dtype=torch.float32)[None])
    params = {"means": torch.nn.Parameter(torch.tensor([[5.0, 5.0, 5.0], list(canonical)])),
              "motion_coefs": torch.nn.Parameter(torch.zeros(2, 1)), "flag": torch.tensor([0.0, 1.0])}
    return GaussianModel(params, bases, canonical_frame=T // 2, max_sh_degree=0)


def camera_at(centre, rot=None) -> torch.Tensor:
    """w2c (4,4) of a camera at ``centre`` with camera-to-world rotation ``rot`` (identity if None)."""
    c2w = torch.eye(4)
    if rot is not None:
        c2w[:3, :3] = rot
    c2w[:3, 3] = torch.tensor(centre)
    return torch.linalg.inv(c2w)


LINE = [[0.1 * (t - 2), 0.0, 0.0] for t in range(T)]  # constant velocity along x
KINK_X = [[0.0, 0.0, 0.0], [1.0, 0, 0], [2.0, 0, 0], [2.0, 0, 0], [2.0, 0, 0]]  # stops at frame 2
KINK_Z = [[0.0, 0.0, 0.0]] * 3 + [[0.0, 0.0, 0.3]] * 2  # jumps 0.3 along z between frames 2 and 3


def test_se3_acceleration_zero_at_constant_velocity_and_hand_value_at_a_kink():
    line = torch.tensor(LINE)[None]
    rot = torch.tensor(IDENTITY_6D).repeat(1, T, 1)
    assert SM.se3_acceleration(rot, line).item() == pytest.approx(0.0, abs=1e-7)
    # Translation kink: second differences at frames 1,2,3 have norms 0, 1, 0 -> mean 1/3, x2.
    # Rotation bump of 0.5 at frame 2 in one component: norms 0.5, 1, 0.5 -> mean 2/3, x1.
    bumped = rot.clone()
    bumped[0, 2, 0] += 0.5
    got = SM.se3_acceleration(bumped, torch.tensor(KINK_X)[None])
    assert got.item() == pytest.approx(2.0 / 3 + 2.0 * 1.0 / 3)



def test_track_smoothness_on_hand_made_trajectories():
    cam = camera_at([0.0, 0.0, -1.0])
    for frame in range(T):
        assert SM.smoothness_terms(ON, one_gaussian(LINE), frame, cam)["track_smooth"].item() == pytest.approx(0, abs=1e-7)
    kink = one_gaussian(KINK_X)
    # Frames 1, 2, 3 around frame 2: x = 1, 2, 2 -> |2*2 - 1 - 2| = 1, times the weight 0.2.
    assert SM.smoothness_terms(ON, kink, 2, cam)["track_smooth"].item() == pytest.approx(0.2)
    # At the first frame the triple moves inward to frames 0, 1, 2 (x = 0, 1, 2): no acceleration.
    assert SM.neighbour_frames(0, T) == (0, 1, 2) and SM.neighbour_frames(T - 1, T) == (T - 3, T - 2, T - 1)
    assert SM.smoothness_terms(ON, kink, 0, cam)["track_smooth"].item() == pytest.approx(0, abs=1e-7)


def test_z_term_penalises_velocity_along_the_ray_only():
    behind = camera_at([0.0, 0.0, -1.0])  # looks down +z at the Gaussian (0, 0, 2)
    # Constant motion across the ray: zero. The same motion seen from the side (camera at x = 3,
    # turned to look down -x; the ray is then the x axis): both velocities count.
    assert SM.smoothness_terms(ON, one_gaussian(LINE), 2, behind)["z_acc"].item() == pytest.approx(0, abs=1e-7)
    turn = torch.tensor([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # camera z axis -> world -x
    side = camera_at([3.0, 0.0, 2.0], turn)
    assert SM.smoothness_terms(ON, one_gaussian(LINE), 2, side)["z_acc"].item() == pytest.approx(2 * 0.1 ** 2)
    # Kink in depth around frame 2: velocities 0 then 0.3 along the ray -> 0 + 0.09.
    assert SM.smoothness_terms(ON, one_gaussian(KINK_Z), 2, behind)["z_acc"].item() == pytest.approx(0.09)
    assert SM.smoothness_terms(ON, one_gaussian(KINK_Z), 2, side)["z_acc"].item() == pytest.approx(0, abs=1e-7)


def test_zero_weights_compute_nothing(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("a term with weight 0 was computed")

    for name in ("se3_acceleration", "dynamic_means_at", "track_smoothness", "ray_velocity"):
        monkeypatch.setattr(SM, name, boom)
    assert SM.smoothness_terms(LossConfig(), one_gaussian(KINK_X), 2, torch.eye(4)) == {}
    assert resolve_config("full").loss.se3_smoothness == 0


def test_too_few_frames_or_no_dynamic_gaussians_give_no_terms():
    short = GaussianModel({"means": torch.zeros(1, 3), "motion_coefs": torch.zeros(1, 1), "flag": torch.ones(1)},
                          MotionBases(1, 2), 0, 0)
    assert SM.smoothness_terms(ON, short, 0, torch.eye(4)) == {}
    static = one_gaussian(KINK_X)
    static.params["flag"] = torch.zeros(2)
    assert set(SM.smoothness_terms(ON, static, 2, torch.eye(4))) == {"se3_smooth"}


def test_terms_send_gradients_to_bases_means_and_coefficients():
    gen = torch.Generator().manual_seed(0)
    bases = MotionBases(3, T)
    with torch.no_grad():
        bases.rot6d.add_(0.1 * torch.randn(bases.rot6d.shape, generator=gen))
        bases.trans.add_(0.1 * torch.randn(bases.trans.shape, generator=gen))
    params = {"means": torch.nn.Parameter(torch.randn(6, 3, generator=gen) + torch.tensor([0.0, 0.0, 3.0])),
              "motion_coefs": torch.nn.Parameter(torch.randn(6, 3, generator=gen)),
              "flag": torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0, 1.0])}
    model = GaussianModel(params, bases, 2, 0)
    terms = SM.smoothness_terms(ON, model, 1, camera_at([0.0, 0.0, -1.0]))
    assert set(terms) == {"se3_smooth", "track_smooth", "z_acc"}
    assert all(math.isfinite(v.item()) and v.item() > 0 for v in terms.values())
    sum(terms.values()).backward()
    for g in (bases.rot6d.grad, bases.trans.grad, params["means"].grad, params["motion_coefs"].grad):
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
    # Static Gaussians get no gradient from the smoothness terms.
    assert params["means"].grad[[0, 4]].abs().sum() == 0


def test_negative_weight_is_a_one_line_error():
    with pytest.raises(BenchError, match="loss.track_smoothness") as err:
        resolve_config("smooth", overrides={"loss.track_smoothness": -0.1})
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_smooth_variant_trains_with_finite_non_zero_terms(tiny, tmp_path, monkeypatch):
    import bench.method.step as S

    grads = []

    def recording(lw, model, frame, w2c):  # the real terms, plus their gradient on the bases
        terms = SM.smoothness_terms(lw, model, frame, w2c)
        if torch.is_grad_enabled():  # not the final training-view renders (outputs.py)
            wrt = [model.bases.rot6d, model.bases.trans, model.params["means"]]
            grads.append(torch.autograd.grad(sum(terms.values()), wrt, retain_graph=True))
        return terms

    monkeypatch.setattr(S, "smoothness_terms", recording)
    run = tmp_path / "smooth"
    train_tiny(run, method="smooth", **{"train.steps": 10, "train.checkpoint_every": 10, "train.log_every": 5})
    last = curves(run)[-1]
    for name in ("se3_smooth", "track_smooth", "z_acc"):
        assert math.isfinite(float(last[name])) and float(last[name]) > 0, name
    assert len(grads) == 10
    # Identity bases at the start: every term is 0 there; once the bases move they pull on them.
    for g in grads[-1]:
        assert torch.isfinite(g).all() and g.abs().sum() > 0
