"""Geometry helpers and the motion bases: blending, interpolation, and initialisation from correspondences."""

import math

import pytest
import torch

from bench.data.scene import Cameras, Extras, LazyImages, Scene, Views
from bench.method.geometry import (backproject, matrix_to_quat, matrix_to_rot6d, pixel_grid, quat_multiply,
                                   quat_to_matrix, rot6d_to_matrix, slerp_quat)
from bench.method.motion import CLUSTER_OWN_WEIGHT, MotionBases, init_from_flow_or_tracks, kmeans, weighted_kabsch


def random_rotations(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return quat_to_matrix(torch.randn(n, 4, generator=g))


def test_quaternion_matrix_round_trip_and_product():
    R = random_rotations(500)
    assert torch.allclose(quat_to_matrix(matrix_to_quat(R)), R, atol=1e-5)
    # 180 degree rotations are the classic failure case of the trace-only formula.
    flips = quat_to_matrix(torch.eye(4)[1:])
    assert torch.allclose(quat_to_matrix(matrix_to_quat(flips)), flips, atol=1e-6)
    a, b = torch.randn(20, 4), torch.randn(20, 4)
    assert torch.allclose(quat_to_matrix(quat_multiply(a, b)), quat_to_matrix(a) @ quat_to_matrix(b), atol=1e-5)


def test_rot6d_round_trip_and_gram_schmidt():
    R = random_rotations(50)
    assert torch.allclose(rot6d_to_matrix(matrix_to_rot6d(R)), R, atol=1e-5)
    M = rot6d_to_matrix(torch.randn(50, 6))
    assert torch.allclose(M @ M.transpose(1, 2), torch.eye(3).expand(50, 3, 3), atol=1e-5)
    assert torch.allclose(torch.det(M), torch.ones(50), atol=1e-5)


def test_slerp_endpoints_and_midpoint():
    q0 = torch.tensor([1.0, 0, 0, 0])
    q1 = torch.tensor([math.cos(0.5), 0, 0, math.sin(0.5)])  # 1 rad about z
    assert torch.allclose(slerp_quat(q0, q1, 0.0), q0, atol=1e-6)
    assert torch.allclose(slerp_quat(q0, q1, 1.0), q1, atol=1e-6)
    mid = slerp_quat(q0, q1, 0.5)
    assert torch.allclose(mid, torch.tensor([math.cos(0.25), 0, 0, math.sin(0.25)]), atol=1e-6)


def set_bases(bases, R, t):
    """R (B,T,3,3), t (B,T,3)."""
    with torch.no_grad():
        bases.rot6d.copy_(matrix_to_rot6d(R))
        bases.trans.copy_(t)


def test_identity_init_does_not_move():
    bases = MotionBases(num_bases=4, num_frames=3)
    means, quats = torch.randn(10, 3), torch.nn.functional.normalize(torch.randn(10, 4), dim=-1)
    m, q = bases.apply(means, quats, torch.randn(10, 4), 1.7)
    assert torch.allclose(m, means, atol=1e-6)
    assert torch.allclose(quat_to_matrix(q), quat_to_matrix(quats), atol=1e-6)


def test_blend_of_identical_bases_is_that_basis():
    B, T = 5, 4
    R = random_rotations(T, seed=1)
    t = torch.randn(T, 3)
    bases = MotionBases(B, T)
    set_bases(bases, R.expand(B, T, 3, 3), t.expand(B, T, 3))
    Rb, tb = bases.transforms(torch.randn(7, B), 2)
    assert torch.allclose(Rb, R[2].expand(7, 3, 3), atol=1e-5)
    assert torch.allclose(tb, t[2].expand(7, 3), atol=1e-5)


def test_one_hot_coefficients_pick_a_basis():
    B, T = 3, 2
    R = random_rotations(B * T, seed=2).view(B, T, 3, 3)
    t = torch.randn(B, T, 3)
    bases = MotionBases(B, T)
    set_bases(bases, R, t)
    logits = torch.full((B, B), -1e4)
    logits[torch.arange(B), torch.arange(B)] = 0.0
    Rb, tb = bases.transforms(logits, 1)
    assert torch.allclose(Rb, R[:, 1], atol=1e-5)
    assert torch.allclose(tb, t[:, 1], atol=1e-5)


def test_fractional_frame_interpolates_neighbours():
    bases = MotionBases(1, 3)
    R = random_rotations(3, seed=4)[None]
    t = torch.tensor([[[0.0, 0, 0], [1.0, 2, 3], [5.0, 0, -1]]])
    set_bases(bases, R, t)
    logits = torch.zeros(1, 1)
    Rf, tf = bases.transforms(logits, 1.25)
    assert torch.allclose(tf[0], 0.75 * t[0, 1] + 0.25 * t[0, 2], atol=1e-6)
    expected = rot6d_to_matrix(0.75 * matrix_to_rot6d(R[0, 1]) + 0.25 * matrix_to_rot6d(R[0, 2]))
    assert torch.allclose(Rf[0], expected, atol=1e-6)
    # A tensor time works too, and frames past the end clamp to the last frame.
    Rl, tl = bases.transforms(logits, torch.tensor(7.0))
    assert torch.allclose(tl[0], t[0, 2]) and torch.allclose(Rl[0], R[0, 2], atol=1e-5)


def test_apply_moves_means_and_rotations():
    bases = MotionBases(2, 2)
    R = random_rotations(4, seed=5).view(2, 2, 3, 3)
    t = torch.randn(2, 2, 3)
    set_bases(bases, R, t)
    means, quats = torch.randn(6, 3), torch.randn(6, 4)
    logits = torch.randn(6, 2)
    Rg, tg = bases.transforms(logits, 1)
    m, q = bases.apply(means, quats, logits, 1)
    assert torch.allclose(m, (Rg @ means[:, :, None]).squeeze(-1) + tg, atol=1e-6)
    assert torch.allclose(quat_to_matrix(q), Rg @ quat_to_matrix(quats), atol=1e-5)


def test_gradients_reach_bases_and_coefficients():
    bases = MotionBases(3, 4)
    logits = torch.randn(5, 3, requires_grad=True)
    m, _ = bases.apply(torch.randn(5, 3), torch.randn(5, 4), logits, 2.5)
    m.sum().backward()
    assert bases.trans.grad[:, 2:4].abs().sum() > 0
    assert bases.rot6d.grad is not None


def test_kmeans_separates_clusters():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(50, 2, generator=g) * 0.1, torch.randn(50, 2, generator=g) * 0.1 + 5])
    labels = kmeans(x, 2, g)
    assert labels[:50].unique().numel() == 1 and labels[50:].unique().numel() == 1
    assert labels[0] != labels[50]


def test_weighted_kabsch_recovers_rigid_motion_and_fills_empty_frames():
    src = torch.randn(30, 3)
    R = random_rotations(3, seed=6)
    t = torch.randn(3, 3)
    dst = torch.einsum("tij,pj->pti", R, src) + t[None]
    w = torch.ones(30, 3)
    w[:, 2] = 0  # frame 2 has no points: copies its nearest fitted frame (1)
    Rf, tf = weighted_kabsch(src, dst, w)
    assert torch.allclose(Rf[:2], R[:2], atol=1e-4)
    assert torch.allclose(tf[:2], t[:2], atol=1e-4)
    assert torch.allclose(Rf[2], Rf[1]) and torch.allclose(tf[2], tf[1])


# A tiny scene: fixed camera looking down +z at a plane at depth 4; a 6x6 square (the dynamic
# object, also at depth 4) moves 1 px right per frame.
H, W, T, F_PX, Z = 16, 24, 4, 20.0, 4.0


def moving_square_scene(with_flow=False, with_tracks=False):
    K = torch.tensor([[F_PX, 0, W / 2], [0, F_PX, H / 2], [0, 0, 1]]).expand(T, 3, 3).clone()
    cams = Cameras(K=K, w2c=torch.eye(4).expand(T, 4, 4).clone(), width=W, height=H)
    mask = torch.zeros(T, H, W)
    for t in range(T):
        mask[t, 5:11, 4 + t:10 + t] = 1
    views = Views(names=[f"{t}" for t in range(T)], cameras=cams,
                  images=LazyImages.from_tensor(torch.rand(T, H, W, 3)),
                  frame_index=torch.arange(T), time=torch.arange(T) / (T - 1),
                  depth=torch.full((T, H, W), Z), motion_mask=mask)
    extras = Extras()
    if with_flow:
        flow = torch.zeros(T - 1, H, W, 2)
        flow[..., 0] = 1.0
        extras.flow_fwd, extras.flow_bwd = flow, -flow
        extras.flow_fwd_valid = extras.flow_bwd_valid = torch.ones(T - 1, H, W, dtype=torch.bool)
    if with_tracks:
        v, u = torch.meshgrid(torch.arange(5, 11.0), torch.arange(4, 10.0), indexing="ij")
        q = torch.stack([u.reshape(-1), v.reshape(-1)], 1) + 0.5  # (36,2) pixel centres at frame 0
        tracks = torch.full((q.shape[0], T, 4), -10.0)  # visible: low occlusion / distance logits
        for t in range(T):
            tracks[:, t, 0] = q[:, 0] + t
            tracks[:, t, 1] = q[:, 1]
        extras.tracks = tracks
    return Scene(dataset="t", name="t", blur_type="motion", train=views, test=views, near=1, far=10, extras=extras)


@pytest.mark.parametrize("kind", ["flow", "tracks"])
def test_init_from_correspondences_recovers_translation(kind):
    scene = moving_square_scene(with_flow=kind == "flow", with_tracks=kind == "tracks")
    canonical = 1
    dyn = backproject(scene.train.depth[canonical], scene.train.cameras.K[canonical], torch.eye(4),
                      scene.train.motion_mask[canonical] > 0)
    bases = MotionBases(num_bases=3, num_frames=T)
    init = init_from_flow_or_tracks(bases, dyn, scene, canonical)
    assert init.path == kind
    assert init.coef_logits.shape == (dyn.shape[0], 3)
    for t in range(T):
        moved, _ = bases.apply(dyn, torch.tensor([[1.0, 0, 0, 0]]).expand(dyn.shape[0], 4), init.coef_logits, t)
        expected = dyn + torch.tensor([(t - canonical) * Z / F_PX, 0, 0])
        assert torch.allclose(moved, expected, atol=1e-4), t


def test_init_without_correspondences_falls_back_to_identity():
    scene = moving_square_scene()
    bases = MotionBases(num_bases=3, num_frames=T)
    init = init_from_flow_or_tracks(bases, torch.randn(8, 3), scene, 0)
    assert init.path == "identity" and "neither" in init.detail
    # identity bases, coefficients from spatial clusters (not uniform: that start is symmetric)
    assert torch.allclose(torch.softmax(init.coef_logits, -1).max(1).values, torch.full((8,), CLUSTER_OWN_WEIGHT))
    assert torch.equal(bases.trans, torch.zeros(3, T, 3))
    scene = moving_square_scene(with_flow=True)
    scene.train.motion_mask = torch.zeros(T, H, W)  # no dynamic pixels -> too few trajectories
    init = init_from_flow_or_tracks(bases, torch.randn(8, 3), scene, 0)
    assert init.path == "identity" and "trajectories" in init.detail


def test_fit_bases_separates_two_rigid_motions():
    from bench.method.motion import coefficients_from_labels, fit_bases

    g = torch.Generator().manual_seed(7)
    T, c = 5, 2
    src = torch.cat([torch.randn(40, 3, generator=g), torch.randn(40, 3, generator=g) + 10])
    angles = torch.linspace(-0.4, 0.4, T)
    Rz = torch.stack([torch.tensor([[a.cos(), -a.sin(), 0], [a.sin(), a.cos(), 0], [0, 0, 1]]) for a in angles])
    Rz = Rz @ Rz[c].T  # the second object spins about z (identity at the canonical frame)
    traj = torch.empty(80, T, 3)
    traj[:40] = src[:40, None] + torch.arange(T)[None, :, None] * torch.tensor([0.5, 0, 0]) - c * torch.tensor([0.5, 0, 0])
    centre = src[40:].mean(0)
    drift = (torch.arange(T) - c)[:, None] * torch.tensor([0.0, 1.0, 0])  # and drifts along y
    traj[40:] = torch.einsum("tij,pj->pti", Rz, src[40:] - centre) + centre + drift
    vis = torch.ones(80, T, dtype=torch.bool)
    vis[:5, 0] = False  # a few points unseen in one frame
    rot6d, trans, labels = fit_bases(traj, vis, c, num_bases=4, gen=g)
    assert set(labels[:40].tolist()).isdisjoint(labels[40:].tolist())
    bases = MotionBases(4, T)
    set_bases(bases, rot6d_to_matrix(rot6d), trans)
    coef = coefficients_from_labels(src, src, labels, 4, own_weight=1 - 1e-7)
    for t in range(T):
        moved, _ = bases.apply(src, torch.tensor([[1.0, 0, 0, 0]]).expand(80, 4), coef, t)
        assert torch.allclose(moved, traj[:, t], atol=1e-3), t


def test_flow_chains_stop_at_invalid_flow():
    from bench.method.motion import _trajectories_from_flow

    scene = moving_square_scene(with_flow=True)
    scene.extras.flow_fwd_valid = scene.extras.flow_fwd_valid.clone()
    scene.extras.flow_fwd_valid[1, :, :7] = False  # frame 1 -> 2 unreliable on the square's left part
    traj, vis = _trajectories_from_flow(scene.extras, scene.train, 0, 4096, torch.Generator().manual_seed(0))
    assert vis[:, :2].all()
    start_u = traj[:, 0, 0] * F_PX / Z + W / 2  # pixel centre (column + 0.5) at frame 0
    lost = start_u + 1 < 7  # at frame 1 these sit in the invalid columns 0..6
    assert lost.any() and (~lost).any()
    assert not vis[lost, 2:].any() and vis[~lost, 2:].all()


# Two squares in front of a static checkered wall, moving in opposite directions (A up, B down),
# seen by a fixed camera, with depth and motion masks but no tracks and no flow: the motion
# initialisation falls back to identity bases and training must tell the two motions apart.
TW, TH, TN, TF = 40, 28, 5, 36.0
SQUARES = {"A": (-0.38, -1.0), "B": (0.38, 1.0)}  # canonical centre x, direction of motion along y
SQUARE_HALF, SQUARE_TRAVEL, SQUARE_Z, WALL_Z = 0.2, 0.3, 2.0, 3.0


def _checker(x, y, cell, a, b):
    on = ((torch.floor(x / cell) + torch.floor(y / cell)) % 2 == 0)[..., None]
    return torch.where(on, torch.tensor(a), torch.tensor(b))


def square_y(direction: float, t: float) -> float:
    """Centre y of a square at normalised time t in [0,1]; 0 at the canonical (middle) frame."""
    return direction * SQUARE_TRAVEL * (t - 0.5)


def _render_two_squares(t: float):
    uv = pixel_grid(TH, TW)
    x = (uv[..., 0] - TW / 2) / TF
    y = (uv[..., 1] - TH / 2) / TF
    rgb = _checker(x * WALL_Z, y * WALL_Z, 0.25, [0.9, 0.8, 0.2], [0.1, 0.3, 0.6])
    depth = torch.full((TH, TW), WALL_Z)
    mask = torch.zeros(TH, TW)
    for cx, direction in SQUARES.values():
        px, py = x * SQUARE_Z - cx, y * SQUARE_Z - square_y(direction, t)
        inside = (px.abs() < SQUARE_HALF) & (py.abs() < SQUARE_HALF)
        rgb = torch.where(inside[..., None], _checker(px, py, 0.1, [0.9, 0.1, 0.1], [0.95, 0.95, 0.95]), rgb)
        depth = torch.where(inside, torch.tensor(SQUARE_Z), depth)
        mask = torch.where(inside, torch.tensor(1.0), mask)
    return rgb, depth, mask


def two_squares_scene() -> Scene:
    K = torch.tensor([[TF, 0, TW / 2], [0, TF, TH / 2], [0, 0, 1.0]]).repeat(TN, 1, 1)
    frames = [_render_two_squares(k / (TN - 1)) for k in range(TN)]
    rgb, depth, mask = (torch.stack(x) for x in zip(*frames))
    cams = Cameras(K=K, w2c=torch.eye(4).repeat(TN, 1, 1), width=TW, height=TH)
    idx = torch.arange(TN)
    views = Views(names=[f"{k:05d}" for k in range(TN)], cameras=cams, images=LazyImages.from_tensor(rgb),
                  frame_index=idx, time=idx.float() / (TN - 1), depth=depth, motion_mask=mask)
    return Scene(dataset="tiny", name="two_squares", blur_type="motion", train=views, test=views,
                 near=1.5, far=3.5)


def train_two_squares(run_dir, setattr, *, steps=150, seed=0, **extra):
    """Train ``no_blur`` briefly on the two-squares scene; returns the final model and the init path.

    setattr(target, value): how to point the data registry at the scene (``monkeypatch.setattr``
    in tests). ``extra``: config overrides on top of the small settings below.
    """
    import json

    import bench.method.train as train_mod
    from bench import rundir
    from bench.method.model import GaussianModel

    scene = two_squares_scene()
    setattr("bench.data.registry.load_scene", lambda dataset, name, data_root=None: scene)
    setattr("bench.data.registry.blur_type_of", lambda dataset, name: scene.blur_type)
    overrides = {"train.steps": steps, "train.checkpoint_every": steps, "train.log_every": steps,
                 "train.num_train_renders": 1, "model.init_static_points": 500, "model.init_dynamic_points": 150,
                 "model.num_motion_bases": 4,
                 # Only the motion is under test: no densification and no virtual views, whose Gaussians
                 # and targets would blur the per-object statistics.
                 "densify.enabled": False, "densify.dgd": False, "unseen.enabled": False,
                 # a fifth of the steps update a frame's translations: a larger step covers the travel
                 "optim.motion_bases": 1e-2, **extra}
    train_mod.train(run_dir, method="no_blur", dataset="tiny", scene="two_squares", seed=seed, profile="cpu",
                    overrides=overrides, device="cpu", progress=False)
    state = torch.load(rundir.checkpoint_path(run_dir, steps), weights_only=False)
    summary = json.loads((run_dir / rundir.TRAIN_SUMMARY).read_text())
    return GaussianModel.from_state_dict(state["model"]), summary["motion_init"]


def two_squares_separation(model) -> dict:
    """How far apart the two squares' Gaussians ended up (see the test below).

    Returns n_a, n_b (dynamic Gaussians left / right of the axis at the canonical frame), tv (total
    variation between the two groups' mean softmax coefficients; 0 = the same mix), mode_a, mode_b
    (the basis most of each group's Gaussians weight most) and dy_a, dy_b (mean vertical travel
    from the first to the last frame; truth -0.3 and +0.3).
    """
    p = model.params
    dyn = p["flag"] > 0.5
    means, coefs, quats = p["means"].detach()[dyn], p["motion_coefs"].detach()[dyn], p["quats"].detach()[dyn]
    a = means[:, 0] < 0
    w = torch.softmax(coefs, dim=-1)
    with torch.no_grad():
        first, _ = model.bases.apply(means, quats, coefs, 0)
        last, _ = model.bases.apply(means, quats, coefs, TN - 1)
    dy = (last - first)[:, 1]
    return {"n_a": int(a.sum()), "n_b": int((~a).sum()),
            "tv": 0.5 * float((w[a].mean(0) - w[~a].mean(0)).abs().sum()),
            "mode_a": int(w[a].argmax(1).mode().values), "mode_b": int(w[~a].argmax(1).mode().values),
            "dy_a": float(dy[a].mean()), "dy_b": float(dy[~a].mean())}


def test_identity_init_learns_separate_motions_of_two_objects(tmp_path, monkeypatch):
    """No tracks, no flow: identity bases. The two squares' Gaussians must end up on different
    bases and move in their own directions (A up, B down), not share one rigid motion."""
    model, path = train_two_squares(tmp_path, monkeypatch.setattr)
    assert path.startswith("identity")
    sep = two_squares_separation(model)
    assert sep["n_a"] > 20 and sep["n_b"] > 20
    assert sep["tv"] > 0.5 and sep["mode_a"] != sep["mode_b"]
    # Each square's Gaussians move its own way, and the two apart by at least half the truth (0.6).
    # The old equal start fails the coefficient checks above; its motions drift apart only by
    # rounding noise that Adam amplifies (docs/method.md §2).
    truth = (square_y(SQUARES["B"][1], 1.0) - square_y(SQUARES["B"][1], 0.0)) * 2
    assert sep["dy_a"] < 0 < sep["dy_b"] and sep["dy_b"] - sep["dy_a"] > 0.5 * truth


def test_identity_coefficients_follow_spatial_clusters_and_the_seed():
    from bench.method.motion import identity_coefficients
    from bench.method.rng import generator

    g = torch.Generator().manual_seed(0)
    pts = torch.cat([torch.randn(30, 3, generator=g) * 0.1, torch.randn(30, 3, generator=g) * 0.1 + 3])
    logits = identity_coefficients(pts, 4, generator(0, "motion_init"))
    w = torch.softmax(logits, -1)
    assert torch.allclose(w.max(1).values, torch.full((60,), CLUSTER_OWN_WEIGHT), atol=1e-6)
    assert set(w[:30].argmax(1).tolist()).isdisjoint(w[30:].argmax(1).tolist())
    assert torch.equal(logits, identity_coefficients(pts, 4, generator(0, "motion_init")))
    assert torch.equal(identity_coefficients(pts, 1, g), torch.zeros(60, 1))
    assert identity_coefficients(torch.zeros(0, 3), 4, g).shape == (0, 4)


def _random_bases(seed: int, num_bases: int = 5, frames: int = 4, dtype=torch.float64) -> MotionBases:
    g = torch.Generator().manual_seed(seed)
    bases = MotionBases(num_bases, frames).to(dtype)
    with torch.no_grad():
        bases.rot6d.copy_(torch.randn(bases.rot6d.shape, generator=g, dtype=dtype))  # any rotation
        bases.trans.copy_(torch.randn(bases.trans.shape, generator=g, dtype=dtype))
    return bases


def _apply_on(compiled: bool, bases, inputs, frame, weights, moving=None):
    """(means_t, quats_t, gradients of inputs and bases) of apply on one path."""
    from bench.render import cpu_ext

    cpu_ext.use_compiled(compiled)
    try:
        bases.zero_grad()
        leaves = [t.detach().clone().requires_grad_() for t in inputs]
        m, q = bases.apply(*leaves, frame, moving=moving)
        ((m * weights[0]).sum() + (q * weights[1]).sum()).backward()
        return m.detach(), q.detach(), [t.grad for t in leaves] + [bases.rot6d.grad.clone(), bases.trans.grad.clone()]
    finally:
        cpu_ext.use_compiled(None)


@pytest.mark.parametrize("seed", [0, 1])
def test_compiled_motion_matches_torch(seed):
    """motion_cpu.cpp against the PyTorch formulation (float64): values and every gradient, on
    rotations that reach all four branches of matrix_to_quat."""
    from bench.render import cpu_ext

    if cpu_ext.load() is None:
        pytest.skip(f"compiled CPU kernels unavailable: {cpu_ext.failure()}")
    bases = _random_bases(seed)
    g = torch.Generator().manual_seed(10 + seed)
    n = 400
    inputs = [torch.randn(n, 3, generator=g, dtype=torch.float64),
              torch.randn(n, 4, generator=g, dtype=torch.float64),
              3 * torch.randn(n, 5, generator=g, dtype=torch.float64)]
    weights = [torch.randn(n, 3, generator=g, dtype=torch.float64), torch.randn(n, 4, generator=g, dtype=torch.float64)]
    R, _ = bases.transforms(inputs[2], 1.3)
    diag = torch.stack([R[:, 0, 0] + R[:, 1, 1] + R[:, 2, 2], R[:, 0, 0], R[:, 1, 1], R[:, 2, 2]], -1)
    branch = torch.stack([diag[:, 0], 2 * diag[:, 1] - diag[:, 0], 2 * diag[:, 2] - diag[:, 0],
                          2 * diag[:, 3] - diag[:, 0]], -1).argmax(-1)
    assert set(branch.tolist()) == {0, 1, 2, 3}
    for moving in (None, torch.rand(n, generator=g) < 0.6):  # all rows, or the dynamic ones
        ref = _apply_on(False, bases, inputs, 1.3, weights, moving)
        got = _apply_on(True, bases, inputs, 1.3, weights, moving)
        assert torch.allclose(ref[0], got[0], rtol=1e-12, atol=1e-12)
        assert torch.allclose(ref[1], got[1], rtol=1e-12, atol=1e-12)
        for a, b in zip(ref[2], got[2]):
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-10)
        if moving is not None:  # static rows: unchanged, gradients passed through, none to coefficients
            assert torch.equal(got[0][~moving], inputs[0][~moving])
            assert torch.equal(got[2][0][~moving], weights[0][~moving])
            assert (got[2][2][~moving] == 0).all()


def test_compiled_motion_gradcheck_and_thread_determinism():
    from bench.render import cpu_ext

    if cpu_ext.load() is None:
        pytest.skip(f"compiled CPU kernels unavailable: {cpu_ext.failure()}")
    bases = _random_bases(3, num_bases=3)
    rot, trans = bases._at_frame(2.0)
    g = torch.Generator().manual_seed(4)
    args = [torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64),
            torch.randn(6, 3, generator=g, dtype=torch.float64), rot.detach(), trans.detach()]
    from bench.method.motion import _MotionCompiled

    module = cpu_ext.load()
    leaves = [a.clone().requires_grad_() for a in args]
    moving = torch.tensor([True, True, False, True, False, True])
    assert torch.autograd.gradcheck(lambda *x: _MotionCompiled.apply(*x, moving, module), leaves)
    # float32, more Gaussians than one chunk of the bases' partial sums: same bits on 1 and 2 threads
    big = _random_bases(5, num_bases=10, dtype=torch.float32)
    g = torch.Generator().manual_seed(6)
    inputs = [torch.randn(3000, 3, generator=g), torch.randn(3000, 4, generator=g), torch.randn(3000, 10, generator=g)]
    weights = [torch.randn(3000, 3, generator=g), torch.randn(3000, 4, generator=g)]
    old = torch.get_num_threads()
    try:
        runs = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            runs.append(_apply_on(True, big, inputs, 0.7, weights))
    finally:
        torch.set_num_threads(old)
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    for a, b in zip(runs[0][2], runs[1][2]):
        assert torch.equal(a, b)
