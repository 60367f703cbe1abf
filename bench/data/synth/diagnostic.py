"""Diagnostic scene families: each one built so that one component's problem is present at a measured share.

- ``unseen``: a camera path with almost no lateral sweep, a wide stereo baseline and two static
  pillars in front of the wall, so the right (test) views see surface no training frame sees.
- ``emerging``: a sphere and a box turning through a full revolution and a ball that enters the
  frame after the canonical frame, so much of the dynamic surface of a frame is not in the
  canonical frame.
- ``sharp_defocus``: focus held on the back wall for the whole clip: the far region is sharp in
  every frame, near objects and the near floor strongly defocused.
- ``sharp_motion``: a nearly still camera and fast objects: a sharp static background, strongly
  blurred movers.

Surfaces carry natural photographs from scikit-image's bundled data (no download), so the blur
modules meet natural image statistics. The measured shares are written to ``meta.json``
(``shares``) and printed by ``bench data synth``; docs/datasets.md §Diagnostic lists them.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from bench.data.synth.raycast import ImageTexture, Motion, Primitive, rot_x, rot_y
from bench.data.synth.scenes import SceneDef

# Photographs bundled in scikit-image's wheel (skimage/data/*.png): loading them reads no network.
PHOTOS = ("brick", "gravel", "grass", "coffee", "chelsea", "astronaut", "rocket", "immunohistochemistry")


@lru_cache(maxsize=None)
def _photo(name: str, texels: int) -> np.ndarray:
    """(G0,G1,3) float32 photo in [0,1], area-resized so that its width is ``texels`` pixels.

    Grey photos are replicated to RGB. Resizing to about 1.5 texels per full-resolution pixel at
    the surface's depth keeps the texture from aliasing into noise when it is ray-cast.
    """
    import cv2
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)(), dtype=np.float32) / 255.0
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    h, w = img.shape[:2]
    size = (texels, max(2, round(texels * h / w)))
    return np.ascontiguousarray(cv2.resize(img[..., :3], size, interpolation=cv2.INTER_AREA))


def _tex(rng: np.random.Generator, name: str, period: float, texels: int, tint=(1.0, 1.0, 1.0)) -> ImageTexture:
    """A photo texture repeating every ``period`` units, tinted (grey photos get a colour cast)."""
    image = _photo(name, texels) * np.asarray(tint, dtype=np.float32)
    return ImageTexture(image=image, period=period, offset=rng.uniform(0.0, period, 2))


def _background(rng: np.random.Generator, block_x: float = -2.9) -> list[Primitive]:
    """Back wall (brick), floor (gravel) and a static box (coffee), placed as in the demo scenes."""
    wall = Primitive("plane", np.zeros(1), _tex(rng, "brick", 4.0, 96, (1.0, 0.78, 0.62)),
                     Motion(base=np.array([0.0, 0.0, 11.0])), False)
    floor = Primitive("plane", np.zeros(1), _tex(rng, "gravel", 3.0, 96, (0.85, 0.9, 0.75)),
                      Motion(base=np.array([0.0, 1.6, 0.0]), base_rot=rot_x(-np.pi / 2)), False)
    block = Primitive("box", np.array([0.8, 0.7, 0.8]), _tex(rng, "coffee", 2.5, 128),
                      Motion(base=np.array([block_x, 0.9, 8.0]), base_rot=rot_y(0.5)), False)
    return [wall, floor, block]


def _scene(name: str, seed: int, rng: np.random.Generator, objects: list[Primitive], **kw) -> SceneDef:
    """SceneDef with the demo defaults (16 frames, 9 sub-frames) and the given overrides."""
    base = dict(cam_base=np.array([0.0, -0.2, 0.0]), cam_path=np.array([0.8, -0.1, 0.6]),
                shake=np.zeros(3), shake_freq=4.0, baseline=0.4, max_coc=4.0, focus=(4.6, 6.0))
    base.update(kw)
    return SceneDef(name=name, seed=seed, objects=objects, layout=base.pop("layout"), **base)


def unseen(name: str, seed: int) -> SceneDef:
    """Motion blur; training path mostly forward (lateral sweep 0.1, no yaw), baseline 0.8, two pillars.

    The pillars (depth ~3.5) hide a strip of wall and floor that the right camera, 0.8 units to the
    side, sees past them; the right camera's outer edge also sees past the left path's field of view.
    """
    rng = np.random.default_rng(seed)
    objects = _background(rng)
    for x, photo in ((-1.5, "rocket"), (1.1, "brick")):
        objects.append(Primitive("box", np.array([0.22, 1.6, 0.22]), _tex(rng, photo, 1.6, 96, (0.8, 0.85, 1.0)),
                                 Motion(base=np.array([x + rng.uniform(-0.1, 0.1), 0.0, 3.6])), False))
    objects += [
        Primitive("sphere", np.array([0.6]), _tex(rng, "chelsea", 2.4, 160),
                  Motion(base=np.array([-0.2, 0.6, 6.0]), amp=np.array([0.8, 0.1, 0.0]), freq=1.0,
                         phase=rng.uniform(0, 2 * np.pi), spin=1.4), True),
        Primitive("box", np.array([0.45, 0.45, 0.45]), _tex(rng, "astronaut", 1.8, 128),
                  Motion(base=np.array([2.2, 0.7, 5.5]), base_rot=rot_x(0.4), amp=np.array([0.3, 0.2, 0.3]),
                         freq=1.0, phase=rng.uniform(0, 2 * np.pi), spin=-1.1), True),
    ]
    return _scene(name, seed, rng, objects, blur_type="motion", layout="dyblurf",
                  cam_path=np.array([0.1, -0.05, 0.8]), yaw_sweep=0.0, baseline=0.8,
                  shake=np.array([0.04, 0.025, 0.02]), shake_freq=rng.uniform(3.5, 4.5))


def emerging(name: str, seed: int) -> SceneDef:
    """Defocus (focus pulled 4.2 -> 10); a sphere and a box each turn one full revolution over the
    clip, and a ball rolls in from the right in frames 11-15, after the canonical frame 8."""
    rng = np.random.default_rng(seed)
    objects = _background(rng) + [
        Primitive("sphere", np.array([0.8]), _tex(rng, "chelsea", 2.6, 160),
                  Motion(base=np.array([-1.1, 0.5, 5.2]), amp=np.array([0.3, 0.1, 0.0]), freq=1.0,
                         phase=rng.uniform(0, 2 * np.pi), spin=2 * np.pi), True),
        Primitive("box", np.array([0.55, 0.55, 0.55]), _tex(rng, "astronaut", 2.0, 128),
                  Motion(base=np.array([1.2, 0.5, 4.4]), base_rot=rot_x(0.5), spin=-2 * np.pi), True),
        # x(t) = 4.9 - 8 (t - 0.55): outside the left view until frame 11 (t = 0.73), well after
        # the canonical frame 8, then crosses a third of the image
        Primitive("sphere", np.array([0.55]), _tex(rng, "immunohistochemistry", 1.8, 128),
                  Motion(base=np.array([4.9 + 8 * 0.55, 0.9, 4.8]), vel=np.array([-8.0, 0.0, 0.0]),
                         spin=-8.0), True),
    ]
    return _scene(name, seed, rng, objects, blur_type="defocus", layout="d2rf", max_coc=8.5, focus=(4.2, 10.0))


def sharp_defocus(name: str, seed: int) -> SceneDef:
    """Defocus with the focus held on the back wall: wall and far floor sharp, the near objects
    (a sphere, a box and a static post at depth 2.7-4.6) and the near floor blurred by 2-7 px."""
    rng = np.random.default_rng(seed)
    objects = _background(rng) + [
        Primitive("box", np.array([0.3, 1.2, 0.3]), _tex(rng, "rocket", 1.6, 96),
                  Motion(base=np.array([2.0, 0.4, 3.0])), False),
        Primitive("sphere", np.array([0.8]), _tex(rng, "chelsea", 2.6, 160),
                  Motion(base=np.array([-0.9, 0.5, 4.6]), amp=np.array([0.6, 0.1, 0.0]), freq=1.0,
                         phase=rng.uniform(0, 2 * np.pi), spin=1.2), True),
        Primitive("box", np.array([0.5, 0.5, 0.5]), _tex(rng, "astronaut", 2.0, 128),
                  Motion(base=np.array([0.9, 0.6, 4.0]), base_rot=rot_x(0.4), amp=np.array([0.3, 0.2, 0.3]),
                         freq=1.0, phase=rng.uniform(0, 2 * np.pi), spin=-1.0), True),
    ]
    return _scene(name, seed, rng, objects, blur_type="defocus", layout="d2rf", max_coc=7.0,
                  focus=(10.6, 10.6), cam_path=np.array([0.8, -0.1, 0.3]),
                  pitch=-0.05)  # tilted less to the floor than the demo camera: more in-focus wall


def sharp_motion(name: str, seed: int) -> SceneDef:
    """Motion blur from a nearly still camera (drift 0.04 units, no shake): the background is sharp,
    a fast-spinning, fast-swinging sphere and box are blurred by several pixels."""
    rng = np.random.default_rng(seed)
    objects = _background(rng) + [
        Primitive("sphere", np.array([0.95]), _tex(rng, "chelsea", 2.6, 160),
                  Motion(base=np.array([-1.0, 0.3, 4.2]), amp=np.array([0.9, 0.15, 0.0]), freq=2.0,
                         phase=rng.uniform(0, 2 * np.pi), spin=14.0), True),
        Primitive("box", np.array([0.6, 0.6, 0.6]), _tex(rng, "astronaut", 2.0, 128),
                  Motion(base=np.array([1.3, 0.5, 3.8]), base_rot=rot_x(0.4), amp=np.array([0.5, 0.4, 0.3]),
                         freq=2.5, phase=rng.uniform(0, 2 * np.pi), spin=-12.0), True),
    ]
    return _scene(name, seed, rng, objects, blur_type="motion", layout="dyblurf",
                  cam_path=np.array([0.03, 0.0, 0.04]), yaw_sweep=0.0)


# family name -> builder(name, seed) -> SceneDef
DIAGNOSTIC = {"unseen": unseen, "emerging": emerging, "sharp_defocus": sharp_defocus, "sharp_motion": sharp_motion}
