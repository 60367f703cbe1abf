"""The default synthetic benchmark: scene definitions drawn deterministically from a seed.

Every scene: a textured back wall, a floor and a static box (the static background), two
independently moving textured objects (a spinning sphere and a tumbling box), a camera moving
along a smooth path (with a small hand-shake for motion blur), and a stereo right camera offset by
``baseline`` along the left camera's x axis at the same instants.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.data.synth.raycast import Motion, Primitive, Texture, rot_x, rot_y, rot_z

TRAIN_SIZE = (128, 72)  # (W, H) of the training images
SUPERSAMPLE = 2  # colour is rendered at 2x and area-downsampled (also the "full resolution" files)
FOCAL = 100.0  # training-resolution focal length in pixels


@dataclass
class SceneDef:
    """Everything needed to render one synthetic scene.

    blur_type: "motion" | "defocus" | "mixed"; layout: "dyblurf" | "d2rf".
    frames: N training instants t_k = k/(N-1); subframes: S exposure samples (odd, mid = sharp);
    exposure: exposure window as a fraction of the frame interval.
    max_coc: largest defocus CoC radius in training pixels (the lens constant is set from it);
    focus: (2,) focus distance at t = 0 and t = 1 (linear in between).
    """

    name: str
    seed: int
    blur_type: str
    layout: str
    objects: list[Primitive]
    cam_base: np.ndarray
    cam_path: np.ndarray
    shake: np.ndarray
    shake_freq: float
    baseline: float
    max_coc: float
    focus: tuple[float, float]
    frames: int = 16
    subframes: int = 9
    exposure: float = 1.0
    yaw_sweep: float = 0.08  # camera yaw change (rad) over the clip; the diagnostic scenes hold it still
    pitch: float = -0.12  # mean camera pitch (rad)

    def c2w(self, t: float, right: bool = False) -> np.ndarray:
        """(4,4) OpenCV camera-to-world of the left (or right) camera at time t."""
        yaw = self.yaw_sweep * (t - 0.5) + self.shake[0] * np.sin(2 * np.pi * self.shake_freq * t)
        pitch = self.pitch + self.shake[1] * np.sin(2 * np.pi * self.shake_freq * t + 1.3)
        roll = self.shake[2] * np.sin(2 * np.pi * self.shake_freq * t + 2.1)
        m = np.eye(4)
        m[:3, :3] = rot_y(yaw) @ rot_x(pitch) @ rot_z(roll)
        m[:3, 3] = self.cam_base + self.cam_path * np.array([t - 0.5, np.sin(np.pi * t), t])
        if right:
            m[:3, 3] += self.baseline * m[:3, 0]
        return m

    def K(self, factor: float = 1.0) -> np.ndarray:
        """(3,3) intrinsics at the training resolution times ``factor`` (principal point at the centre)."""
        w, h = TRAIN_SIZE
        f = FOCAL * factor
        return np.array([[f, 0, w * factor / 2], [0, f, h * factor / 2], [0, 0, 1.0]])

    def focus_at(self, t: float) -> float:
        return self.focus[0] + (self.focus[1] - self.focus[0]) * t

    def sub_times(self, k: int) -> np.ndarray:
        """(S,) exposure sample times of frame k, centred on t_k."""
        dt = 1.0 / (self.frames - 1)
        offsets = (np.arange(self.subframes) / (self.subframes - 1) - 0.5) * self.exposure * dt
        return k * dt + offsets


def _texture(rng: np.random.Generator, cell: float) -> Texture:
    a = rng.uniform(0.05, 0.5, 3)
    b = rng.uniform(0.55, 0.95, 3)
    angle = rng.uniform(0, np.pi)
    freq = rng.uniform(1.5, 2.5) / cell * 0.25
    return Texture(color_a=a, color_b=b, cell=cell, stripe=freq * np.array([np.cos(angle), np.sin(angle)]),
                   noise=rng.uniform(0, 1, (16, 16)), noise_period=cell * 8)


def _background(rng: np.random.Generator) -> list[Primitive]:
    wall = Primitive("plane", np.zeros(1), _texture(rng, 0.5), Motion(base=np.array([0.0, 0.0, 11.0])), False)
    floor = Primitive("plane", np.zeros(1), _texture(rng, 0.4),
                      Motion(base=np.array([0.0, 1.6, 0.0]), base_rot=rot_x(-np.pi / 2)), False)
    block = Primitive("box", np.array([0.8, 0.7, 0.8]), _texture(rng, 0.3),
                      Motion(base=np.array([rng.uniform(-3.2, -2.6), 0.9, 8.0]), base_rot=rot_y(0.5)), False)
    return [wall, floor, block]


def _movers(rng: np.random.Generator, speed: float) -> list[Primitive]:
    """A spinning sphere moving sideways and a tumbling box moving on a diagonal; ``speed`` scales motion."""
    sphere = Primitive("sphere", np.array([0.75]), _texture(rng, 0.22),
                       Motion(base=np.array([-0.9, 0.55, 5.2]) + rng.uniform(-0.2, 0.2, 3),
                              amp=speed * np.array([0.9, 0.15, 0.0]), freq=1.0, phase=rng.uniform(0, 2 * np.pi),
                              spin=speed * 2.5), True)
    box = Primitive("box", np.array([0.5, 0.5, 0.5]), _texture(rng, 0.2),
                    Motion(base=np.array([1.5, 0.6, 4.2]) + rng.uniform(-0.2, 0.2, 3), base_rot=rot_x(0.4),
                           amp=speed * np.array([0.35, 0.3, 0.5]), freq=1.0, phase=rng.uniform(0, 2 * np.pi),
                           spin=-speed * 2.0), True)
    return [sphere, box]


FAMILIES = {
    # blur_type, layout, object speed, camera shake (yaw, pitch, roll rad), largest CoC (px),
    # focus distance at t = 0 and t = 1.
    # Blur strength: sized so that training through the *true* blur (the ceiling of any blur
    # module, docs/method.md §10) clearly beats no blur model at the cpu profile; weaker blur left
    # too little room for a benchmark of deblurring. The measured ceiling is in the README.
    # Focus: the defocus scenes pull focus from the moving objects (depth ~4.5) to the back wall
    # (~10.5), as D2RF's focus changes over time. With a short pull (4.6 -> 6.0) the background
    # was equally blurred in every frame: blur a blind multi-frame method cannot tell from texture.
    "motion": ("motion", "dyblurf", 0.55, np.array([0.049, 0.027, 0.022]), 4.0, (4.6, 6.0)),
    "defocus": ("defocus", "d2rf", 0.4, np.zeros(3), 8.5, (4.2, 10.0)),
    "mixed": ("mixed", "dyblurf", 0.45, np.array([0.018, 0.01, 0.008]), 4.0, (4.6, 6.0)),
}


def demo_scene(name: str, seed: int) -> SceneDef:
    """The demo benchmark's scene ``<family>_<i>`` (e.g. motion_0) drawn from ``seed`` and its family
    (FAMILIES); every synthetic scene by name: bench.data.synth.catalog.make_scene."""
    family = name.rsplit("_", 1)[0]
    if family not in FAMILIES:
        raise ValueError(f"unknown synthetic family {family!r}")
    blur_type, layout, speed, shake, max_coc, focus = FAMILIES[family]
    rng = np.random.default_rng(seed)
    objects = _background(rng) + _movers(rng, speed)
    return SceneDef(name=name, seed=seed, blur_type=blur_type, layout=layout, objects=objects,
                    frames=12 if family == "mixed" else 16,  # mixed renders a defocus per sub-frame: keep it cheap
                    cam_base=np.array([0.0, -0.2, 0.0]) + rng.uniform(-0.1, 0.1, 3),
                    cam_path=np.array([0.8, -0.1, 0.6]) * rng.uniform(0.8, 1.2, 3), shake=shake,
                    shake_freq=rng.uniform(3.5, 4.5), baseline=0.4, max_coc=max_coc, focus=focus)
