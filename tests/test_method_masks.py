"""The depth-consistency check that keeps dynamic Gaussians off static surface inside exposure-swept masks."""

import dataclasses

import torch

from bench.method.config import resolve_config
from bench.method.masks import moving_mask, moving_masks, static_votes
from bench.method.model import init_model
from method_tiny import tiny_scene


def swept(mask: torch.Tensor, px: int = 3) -> torch.Tensor:
    """(N,H,W) masks widened by ``px`` columns on both sides: the union over an exposure of a sideways
    motion, as a mask extractor run on a blurry frame gives it."""
    out = mask.clone()
    for s in range(1, px + 1):
        out[..., s:] = torch.maximum(out[..., s:], mask[..., :-s])
        out[..., :-s] = torch.maximum(out[..., :-s], mask[..., s:])
    return out


def swept_scene():
    """The tiny scene (a wall at z=3, a square at z=2 moving along x) with exposure-swept masks; also
    returns the true masks of the square."""
    scene = tiny_scene()
    true = scene.train.motion_mask.clone()
    train = dataclasses.replace(scene.train, motion_mask=swept(true))
    return dataclasses.replace(scene, train=train), true > 0.5


def test_swept_wall_pixels_are_static_and_the_square_stays_moving():
    scene, true = swept_scene()
    tr = scene.train
    moving = moving_masks(tr, tol=0.05)
    found = 0
    for i in range(len(tr)):
        band = (tr.motion_mask[i] > 0.5) & ~true[i]  # wall seen through the sweep
        testable, _ = static_votes(tr.depth, tr.motion_mask, tr.cameras.K, tr.cameras.w2c, i, 0.05)
        # every swept wall pixel that another frame sees unmasked is found static; one that every
        # other frame masks too gives no evidence and stays moving
        assert torch.equal(moving[i] & band, band & (testable == 0))
        assert torch.equal(moving[i] & true[i], true[i])  # no pixel of the square is lost
        found += int((band & ~moving[i]).sum())
    assert found >= 0.7 * int(((tr.motion_mask > 0.5) & ~true).sum())
    # without the check every mask pixel counts as moving
    assert torch.equal(moving_mask(tr.depth, tr.motion_mask, tr.cameras.K, tr.cameras.w2c, 0, None),
                       tr.motion_mask[0] > 0.5)


def test_a_point_in_front_of_the_background_stays_moving_where_other_masks_miss_it():
    """Frame 2's square (z = 2) where the other frames see only the wall (z = 3) and have no mask at all:
    every other frame tests it, and none finds static surface within the tolerance."""
    scene, true = swept_scene()
    tr = scene.train
    depth = torch.full_like(tr.depth, 3.0)  # the wall's z-depth (cameras translate in x only)
    depth[2] = tr.depth[2]
    masks = torch.zeros_like(tr.motion_mask)
    masks[2] = true[2].float()
    m = moving_mask(depth, masks, tr.cameras.K, tr.cameras.w2c, 2, 0.05)
    assert torch.equal(m, true[2])
    # at a tolerance wider than the depth gap (half the square's depth) the square reads as wall
    assert not moving_mask(depth, masks, tr.cameras.K, tr.cameras.w2c, 2, 0.6).any()


def test_initial_dynamic_gaussians_keep_off_the_swept_wall():
    scene, _ = swept_scene()
    base = {"model.init_static_points": 300, "model.init_dynamic_points": 10_000, "model.motion_init": "identity"}
    depths = {}
    for check in ("depth", "none"):
        cfg = resolve_config("full", "cpu", {**base, "model.dynamic_mask_check": check})
        model, _ = init_model(scene, cfg, 0)
        dyn = model.params["flag"] > 0.5
        depths[check] = model.params["means"].detach()[dyn][:, 2]  # canonical camera looks down +z from z=0
    assert (depths["depth"] - 2.0).abs().max() < 1e-4  # all on the square (z = 2)
    assert ((depths["none"] - 3.0).abs() < 1e-4).sum() > 20  # the unchecked mask puts some on the wall
