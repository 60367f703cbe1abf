"""The pixel convention (centre of column j at u = j + 0.5) across geometry, renderer, generator and lifting."""

import numpy as np
import torch

from bench.data.synth.raycast import pixel_rays
from bench.method.geometry import (backproject, pixel_centres, pixel_grid, pixel_index, project, quat_to_matrix,
                                   rigid_inverse, unproject)
from bench.method.motion import _sample_bilinear, _sample_nearest
from bench.method.unseen import forward_warp
from bench.render import rasterize

H, W = 24, 32
K = torch.tensor([[50.0, 0, W / 2], [0, 50.0, H / 2], [0, 0, 1]])


def posed_camera():
    c2w = torch.eye(4)
    c2w[:3, :3] = quat_to_matrix(torch.tensor([0.9, 0.2, -0.3, 0.1]))
    c2w[:3, 3] = torch.tensor([0.3, -1.0, 2.0])
    return c2w


def test_project_backproject_project_lands_on_the_same_pixel_centre():
    c2w = posed_camera()
    depth = 2 + torch.rand(H, W, generator=torch.Generator().manual_seed(0))
    mask = torch.rand(H, W, generator=torch.Generator().manual_seed(1)) > 0.5
    pts = backproject(depth, K, c2w, mask)
    uv, z = project(pts, K, rigid_inverse(c2w))
    rows_cols = torch.nonzero(mask)
    assert torch.allclose(uv, rows_cols.flip(1).float() + 0.5, atol=1e-3)
    assert torch.equal(pixel_index(uv), rows_cols.flip(1))
    assert torch.allclose(z, depth[mask], atol=1e-4)
    # and the other way round: a projected point's coordinates unproject to the same point
    again = unproject(uv, z, K, c2w)
    assert torch.allclose(again, pts, atol=1e-4)
    assert torch.equal(pixel_centres(rows_cols), pixel_grid(H, W)[mask])


def test_principal_point_is_the_image_centre_between_the_middle_pixels():
    """With cx = W/2 (LLFF, COLMAP, the generator) the optical axis passes between pixels W/2-1 and W/2."""
    pts = backproject(torch.ones(H, W), K, torch.eye(4))
    x = pts[:, 0].view(H, W)
    assert torch.allclose(x[:, W // 2 - 1], -x[:, W // 2])


def test_synthetic_generator_casts_rays_through_the_same_pixel_centres():
    rays = torch.from_numpy(pixel_rays(K.double().numpy(), W, H)).float()
    assert torch.allclose(backproject(torch.ones(H, W), K, torch.eye(4)), rays, atol=1e-6)


def test_renderer_centres_a_gaussian_backprojected_from_a_pixel_on_that_pixel():
    """A small Gaussian at pixel (i, j)'s back-projected centre: brightest there, symmetric around it."""
    c2w = posed_camera()
    i, j = 9, 14
    mask = torch.zeros(H, W, dtype=torch.bool)
    mask[i, j] = True
    mean = backproject(torch.full((H, W), 3.0), K, c2w, mask)
    out = rasterize(mean, torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), np.log(0.02)),
                    torch.tensor([5.0]), torch.ones(1, 3), rigid_inverse(c2w)[None], K[None], W, H,
                    backend="torch")
    alpha = out.alpha[0, ..., 0]
    assert divmod(int(alpha.argmax()), W) == (i, j)
    assert torch.allclose(alpha[i, j - 1], alpha[i, j + 1], atol=1e-5)
    assert torch.allclose(alpha[i - 1, j], alpha[i + 1, j], atol=1e-5)
    assert alpha[i, j - 1] < 0.5 * alpha[i, j]


def test_lifting_lookups_read_the_pixel_whose_centre_is_given():
    img = torch.rand(H, W, 3, generator=torch.Generator().manual_seed(2))
    rows_cols = torch.tensor([[0, 0], [5, 7], [H - 1, W - 1]])
    uv = pixel_centres(rows_cols)
    expected = img[rows_cols[:, 0], rows_cols[:, 1]]
    near, inside = _sample_nearest(img, uv)
    assert torch.equal(near, expected) and inside.all()
    lin, inside = _sample_bilinear(img, uv)
    assert torch.allclose(lin, expected, atol=1e-6) and inside.all()
    # anywhere inside a pixel's square reads that pixel; its edges bound the image
    assert torch.equal(_sample_nearest(img, uv + 0.49)[0], expected)
    assert not _sample_nearest(img, torch.tensor([[-0.01, 3.0], [W + 0.01, 3.0]]))[1].any()


def test_forward_warp_to_the_same_camera_maps_pixel_centres_to_pixel_centres():
    img = torch.rand(H, W, 3, generator=torch.Generator().manual_seed(3))
    # a smooth surface: the warp's z-test drops a pixel's own sample when a neighbour more than
    # z_tol nearer also splats onto it, which a rough random depth would trigger
    depth = 2 + 0.01 * torch.arange(W).float().expand(H, W)
    c2w = posed_camera()
    warped, valid = forward_warp(img, depth, K, c2w, K, rigid_inverse(c2w))
    assert valid.all()
    assert torch.allclose(warped, img, atol=1e-4)
