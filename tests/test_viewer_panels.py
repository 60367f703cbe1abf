"""bench/viewer/panels.py: the blur-size map and the colour map of the viewer's panels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.viewer.panels import BLUR_SIZE, BLURRED, DEPTH, SHARP, available, blur_size_map, colorize


def _kernel(weights: dict[tuple[int, int], float], K: int = 5) -> torch.Tensor:
    k = torch.zeros(K, K)
    for (i, j), w in weights.items():
        k[i, j] = w
    return k.reshape(K * K)


def test_blur_size_is_the_rms_radius_about_the_centroid_weighted_by_the_mask():
    delta = _kernel({(2, 2): 1.0})
    shifted = _kernel({(0, 4): 1.0})  # moves the pixel, blurs nothing
    pair = _kernel({(2, 1): 0.5, (2, 3): 0.5})  # two taps 1 px either side: radius 1
    box = torch.full((25,), 1 / 25)
    kernels = torch.stack([delta, shifted, pair, box, pair]).reshape(1, 5, 25)
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.5]])
    size = blur_size_map(kernels, mask)
    assert size.shape == (1, 5)
    assert size[0, :3].tolist() == pytest.approx([0.0, 0.0, 1.0], abs=1e-6)
    assert float(size[0, 3]) == pytest.approx(2.0)  # sqrt(2 * mean of (-2..2)^2) = sqrt(4)
    assert float(size[0, 4]) == pytest.approx(0.5)


def test_colorize_maps_the_range_to_the_colour_map_ends_and_clips():
    values = np.array([[-1.0, 0.0, 0.5, 1.0, 2.0]])
    rgb = colorize(values, 0.0, 1.0)
    assert rgb.shape == (1, 5, 3) and rgb.dtype == np.uint8
    assert (rgb[0, 0] == rgb[0, 1]).all() and (rgb[0, 3] == rgb[0, 4]).all()
    assert not (rgb[0, 1] == rgb[0, 3]).all() and not (rgb[0, 1] == rgb[0, 2]).all()


def test_panels_without_bpnet_leave_out_what_needs_it():
    assert available(True) == (SHARP, BLURRED, BLUR_SIZE, DEPTH)
    assert available(False) == (SHARP, DEPTH)
