"""Virtual views: forward warping with a z-test, inpainting, and the virtual camera layout."""

import pytest
import torch

from bench.method.geometry import matrix_to_quat, quat_to_matrix, rigid_inverse
from bench.method.unseen import (KINDS, build_virtual_views, forward_warp, inpaint_holes, inpainted_share,
                                 midpoint_pose, scene_offset, side_direction)

H, W, F_PX = 12, 20, 10.0
K = torch.tensor([[F_PX, 0, W / 2], [0, F_PX, H / 2], [0, 0, 1]])


def shifted_w2c(dx):
    """World-to-camera of a camera at (dx, 0, 0) looking down +z."""
    c2w = torch.eye(4)
    c2w[0, 3] = dx
    return rigid_inverse(c2w)


def ramp_image():
    u = torch.arange(W, dtype=torch.float32).expand(H, W)
    v = torch.arange(H, dtype=torch.float32)[:, None].expand(H, W)
    return torch.stack([u / W, v / H, torch.full((H, W), 0.5)], dim=-1)


@pytest.mark.parametrize("baseline", [1.0, 1.25])
def test_fronto_parallel_plane_shifts_by_the_disparity(baseline):
    Z = 5.0
    img = ramp_image()
    warped, valid = forward_warp(img, torch.full((H, W), Z), K, torch.eye(4), K, shifted_w2c(baseline))
    disparity = F_PX * baseline / Z  # 2 px or 2.5 px to the left
    cols = torch.arange(W)
    inside = cols + disparity <= W - 1
    assert valid[:, inside].all() and not valid[:, cols + disparity > W - 0.5].any()
    # the ramp is linear, so bilinear splatting reproduces it exactly at fractional disparities too
    expected_u = (cols[inside] + disparity) / W
    assert torch.allclose(warped[:, inside, 0], expected_u.expand(H, -1), atol=1e-5)
    assert torch.allclose(warped[:, inside, 1], img[:, inside, 1], atol=1e-5)


def test_nearest_surface_wins():
    depth = torch.full((H, W), 10.0)
    depth[:, 8:12] = 2.0  # a near strip in front of a far wall
    img = torch.zeros(H, W, 3)
    img[:, 8:12] = 1.0  # near strip white, wall black
    warped, valid = forward_warp(img, depth, K, torch.eye(4), K, shifted_w2c(0.4))
    # near strip moves 2 px left (f*b/Z = 10*0.4/2), the wall 0.4 px; the strip covers the wall
    assert (warped[:, 6:10, 0][valid[:, 6:10]] == 1.0).all()
    assert valid[:, 6:10].all()
    # disoccluded wall behind the strip's old right edge is a hole or wall-coloured, never white
    assert (warped[:, 10:12, 0][valid[:, 10:12]] < 0.5).all()


def test_a_grazing_near_splat_does_not_punch_a_hole_in_the_far_surface():
    """A near pixel whose splat only grazes a destination pixel must not reject the wall covering it."""
    depth = torch.full((H, W), 10.0)
    depth[5, 10] = 2.0  # one near pixel in front of a far wall
    img = torch.zeros(H, W, 3)
    img[5, 10] = 1.0
    # near pixel moves 1.98 px left (f*b/Z = 10*0.396/2): weight 0.98 on column 8, 0.02 on column 9;
    # the wall moves 0.396 px and covers every column with weight >= 0.396
    warped, valid = forward_warp(img, depth, K, torch.eye(4), K, shifted_w2c(0.396))
    assert valid[5, :W - 1].all()
    assert warped[5, 8, 0] == 1.0  # covered by the near pixel: the near surface wins
    assert warped[5, 9, 0] < 0.05  # only grazed by it: the wall shows, with the graze's share


def test_inpaint_fills_only_holes():
    img = ramp_image()
    valid = torch.ones(H, W, dtype=torch.bool)
    valid[4:7, 5:9] = False
    filled = inpaint_holes(img, valid)
    assert torch.equal(filled[valid], img[valid])
    assert (filled[~valid] - img[~valid]).abs().max() < 0.1  # smooth image: close to the truth
    mask = torch.zeros(H, W, 1)
    mask[:, 10:] = 1
    filled_mask = inpaint_holes(mask, valid)
    assert filled_mask.shape == (H, W, 1) and torch.equal(filled_mask[valid], mask[valid])


def test_midpoint_pose_halfway():
    a = torch.eye(4)
    b = torch.eye(4)
    b[:3, :3] = quat_to_matrix(torch.tensor([[0.0, 0, 0, 1.0]]))[0]  # 180 deg about z
    b[:3, 3] = torch.tensor([2.0, 0, 4])
    mid = midpoint_pose(a, b)
    assert torch.allclose(mid[:3, 3], torch.tensor([1.0, 0, 2]))
    q = matrix_to_quat(mid[:3, :3])
    assert torch.allclose(q.abs(), torch.tensor([2 ** -0.5, 0, 0, 2 ** -0.5]), atol=1e-6)  # 90 deg about z


def test_build_virtual_views_layout():
    N = 3
    c2w = torch.eye(4).repeat(N, 1, 1)
    c2w[:, 0, 3] = torch.tensor([0.0, 0.2, 0.4])  # camera slides along +x
    images = ramp_image().expand(N, H, W, 3).clone()
    depths = torch.full((N, H, W), 5.0)
    masks = torch.zeros(N, H, W)
    masks[:, 3:8, 6:12] = 1
    views = build_virtual_views(c2w, K, images, depths, masks, offset=0.5, side="trajectory")
    assert len(views) == 4 * (N - 1)
    assert views.kind == list(KINDS) * (N - 1)
    assert views.source_frame.tolist() == [0, 1, 0, 0, 1, 2, 1, 1]
    assert views.images.shape == (8, H, W, 3) and views.motion_mask.shape == (8, H, W)
    assert set(views.motion_mask.unique().tolist()) <= {0.0, 1.0}
    centres = rigid_inverse(views.w2c)[:, :3, 3]
    assert torch.allclose(centres[0], torch.tensor([0.1, 0, 0]), atol=1e-6)
    # perpendicular to the optical axis (z) and the trajectory (x): +-0.5 along y
    assert torch.allclose(centres[2], torch.tensor([0.0, 0.5, 0]), atol=1e-6)
    assert torch.allclose(centres[3], torch.tensor([0.0, -0.5, 0]), atol=1e-6)
    # a +0.5 shift in y at depth 5 moves the content up by f*0.5/5 = 1 px: the bottom row is a hole
    assert not views.valid[2, -1].any() and views.valid[2, :-1].all()
    # the mid view warped from frame 0 shows the mask shifted 0.2 px: still the same block
    assert torch.equal(views.motion_mask[0], masks[0])
    assert (views.images >= 0).all() and (views.images <= 1).all()


def test_scene_offset_is_a_fraction_of_the_median_valid_depth():
    depths = torch.zeros(2, H, W)
    depths[0, :, : W // 2] = 2.0
    depths[1, :, : W // 2] = 4.0
    depths[1, 0, 0] = 100.0  # one outlier moves the median, not the mean
    offset, median = scene_offset(depths, 0.05)
    # 120 valid pixels at 2, 119 at 4, one at 100; the invalid (0) half is ignored
    assert median == 2.0 and offset == pytest.approx(0.1)
    scaled, scaled_median = scene_offset(depths * 3.0, 0.05)
    assert scaled == pytest.approx(3.0 * offset) and scaled_median == pytest.approx(3.0 * median)
    with pytest.raises(ValueError, match="valid training depth"):
        scene_offset(torch.zeros(1, H, W), 0.05)


def test_inpainted_share_per_kind_grows_with_the_side_offset():
    N = 2
    c2w = torch.eye(4).repeat(N, 1, 1)
    c2w[1, 0, 3] = 0.2
    images = ramp_image().expand(N, H, W, 3).clone()
    depths = torch.full((N, H, W), 5.0)
    masks = torch.zeros(N, H, W)
    small = inpainted_share(build_virtual_views(c2w, K, images, depths, masks, offset=0.5, side="trajectory"))
    large = inpainted_share(build_virtual_views(c2w, K, images, depths, masks, offset=1.5, side="trajectory"))
    assert set(small) == set(KINDS)
    # +-0.5 along y at depth 5 = 1 px of 12 rows uncovered; +-1.5 = 3 rows
    assert small["perp_plus"] == pytest.approx(1 / H) and large["perp_plus"] == pytest.approx(3 / H)
    assert small["mid_from_prev"] == large["mid_from_prev"]


def turned_c2w(x: float, yaw_deg: float) -> torch.Tensor:
    """A camera at (x, 0, 0) turned by ``yaw_deg`` about the world y axis."""
    a = torch.deg2rad(torch.tensor(yaw_deg))
    c2w = torch.eye(4)
    c2w[:3, :3] = torch.tensor([[torch.cos(a), 0, torch.sin(a)], [0, 1, 0], [-torch.sin(a), 0, torch.cos(a)]])
    c2w[0, 3] = x
    return c2w


def test_side_views_follow_the_camera_x_axis_not_the_trajectory():
    """A camera sliding sideways (along its x axis, the stereo baseline of the test views): the upstream
    rule moves the side views vertically, camera_x horizontally along the camera's own (turned) x axis."""
    a, b = turned_c2w(0.0, 20.0), turned_c2w(0.2, 20.0)
    assert torch.allclose(side_direction(a, b, "trajectory").abs(), torch.tensor([0.0, 1, 0]), atol=1e-6)
    assert torch.allclose(side_direction(a, b, "camera_x"), a[:3, 0], atol=1e-6)
    # the camera's x axis even when the camera stands still (no trajectory)
    assert torch.allclose(side_direction(a, a, "camera_x"), a[:3, 0], atol=1e-6)
    with pytest.raises(ValueError, match="camera_x or trajectory"):
        side_direction(a, b, "sideways")


def test_camera_x_side_views_shift_content_horizontally_by_the_disparity():
    N = 2
    c2w = torch.eye(4).repeat(N, 1, 1)
    c2w[1, 0, 3] = 0.2
    images = ramp_image().expand(N, H, W, 3).clone()
    depths = torch.full((N, H, W), 5.0)
    views = build_virtual_views(c2w, K, images, depths, torch.zeros(N, H, W), offset=1.0)  # default camera_x
    centres = rigid_inverse(views.w2c)[:, :3, 3]
    plus, minus = views.kind.index("perp_plus"), views.kind.index("perp_minus")
    assert torch.allclose(centres[plus], torch.tensor([1.0, 0, 0]), atol=1e-6)
    assert torch.allclose(centres[minus], torch.tensor([-1.0, 0, 0]), atol=1e-6)
    # +1 along x at depth 5 = f*1/5 = 2 px of horizontal parallax: the two right-most columns are holes
    assert not views.valid[plus, :, -2:].any() and views.valid[plus, :, :-2].all()
    assert torch.allclose(views.images[plus, :, :-2], images[0, :, 2:], atol=1e-5)
    # and the inpainted share is still reported per view kind
    share = inpainted_share(views)
    assert set(share) == set(KINDS) and share["perp_plus"] == pytest.approx(2 / W)
