"""Geometry helpers and the motion bases: blending, interpolation, and initialisation from correspondences."""

import math

import pytest
import torch

from bench.data.scene import Cameras, Extras, LazyImages, Scene, Views
from bench.method.geometry import (backproject, matrix_to_quat, matrix_to_rot6d, project, quat_multiply,
                                   quat_to_matrix, rigid_inverse, rot6d_to_matrix, slerp_quat)
from bench.method.motion import MotionBases, init_from_flow_or_tracks, kmeans, weighted_kabsch


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


def test_backproject_then_project_is_identity():
    K = torch.tensor([[50.0, 0, 15.5], [0, 50.0, 11.5], [0, 0, 1]])
    c2w = torch.eye(4)
    c2w[:3, :3] = random_rotations(1, seed=3)[0]
    c2w[:3, 3] = torch.tensor([0.3, -1.0, 2.0])
    depth = 2 + torch.rand(24, 32)
    mask = torch.rand(24, 32) > 0.5
    pts = backproject(depth, K, c2w, mask)
    uv, z = project(pts, K, rigid_inverse(c2w))
    v, u = torch.nonzero(mask, as_tuple=True)
    assert torch.allclose(uv, torch.stack([u, v], 1).float(), atol=1e-3)
    assert torch.allclose(z, depth[mask], atol=1e-4)


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
        q = torch.stack([u.reshape(-1), v.reshape(-1)], 1)  # (36,2) at frame 0
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
    assert torch.equal(init.coef_logits, torch.zeros(8, 3))
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
    start_u = traj[:, 0, 0] * F_PX / Z + W / 2  # pixel column at frame 0
    lost = start_u + 1 < 7  # at frame 1 these sit in the invalid columns
    assert lost.any() and (~lost).any()
    assert not vis[lost, 2:].any() and vis[~lost, 2:].all()
