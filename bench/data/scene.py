"""The one scene structure every loader returns.

Conventions (all loaders, synthetic included):

- Cameras are pinhole, OpenCV convention (x right, y down, z forward), world-to-camera
  matrices ``w2c`` (N,4,4) and intrinsics ``K`` (N,3,3) in pixels of the returned image size.
- Images are float32 tensors in [0, 1], shape (H,W,3), loaded lazily by index.
- Time: training frame k of N has ``frame_index = k`` and ``time = k / (N - 1)`` in [0, 1]
  (``time = 0`` when N == 1). A test view carries the frame index and time of its stereo
  (left) partner, so ``time`` is always a function of ``frame_index``.
- Depth is metric depth along the optical axis in scene units (after the loader's scaling),
  0 where invalid. Motion masks are float32 in {0, 1}, 1 = dynamic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch


class LazyImages(Sequence[torch.Tensor]):
    """Images read on demand: ``images[i]`` -> (H,W,C) float32 tensor.

    ``loader(i)`` does the reading; results are not cached so that large scenes stay small in
    memory. ``stack()`` reads everything into one (N,H,W,C) tensor. ``sources``: the N files the
    images come from (None for in-memory images), for evaluation protocols that read the ground
    truth file themselves (8-bit resize).
    """

    def __init__(self, count: int, loader: Callable[[int], torch.Tensor], sources: Sequence | None = None):
        self._count = count
        self._loader = loader
        self.sources = list(sources) if sources is not None else None

    @classmethod
    def from_tensor(cls, images: torch.Tensor) -> "LazyImages":
        """Wrap an in-memory (N,H,W,C) tensor."""
        return cls(images.shape[0], lambda i: images[i])

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._count))]
        if not -self._count <= i < self._count:
            raise IndexError(i)
        return self._loader(i % self._count)

    def stack(self) -> torch.Tensor:
        """All images as one (N,H,W,C) tensor."""
        return torch.stack([self[i] for i in range(self._count)])


@dataclass
class Cameras:
    """N pinhole cameras sharing one image size.

    K: (N,3,3) intrinsics in pixels. w2c: (N,4,4) world-to-camera, OpenCV convention.
    """

    K: torch.Tensor
    w2c: torch.Tensor
    width: int
    height: int

    def __len__(self) -> int:
        return self.K.shape[0]

    @property
    def c2w(self) -> torch.Tensor:
        """(N,4,4) camera-to-world matrices."""
        return torch.linalg.inv(self.w2c)


@dataclass
class Views:
    """A set of views: the blurry training frames or the sharp test frames.

    names: N file stems (used to name renders). images: N lazily read (H,W,3) images.
    frame_index: (N,) long, the training frame index (partner's for test views).
    time: (N,) float32 in [0,1], ``frame_index / (N_train - 1)``.
    depth: optional (N,H,W) float32 metric depth, 0 = invalid.
    motion_mask: optional (N,H,W) float32 in {0,1}, 1 = dynamic.
    """

    names: list[str]
    cameras: Cameras
    images: LazyImages
    frame_index: torch.Tensor
    time: torch.Tensor
    depth: torch.Tensor | None = None
    motion_mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class Extras:
    """Optional inputs a layout may ship (None when absent).

    flow_fwd / flow_bwd: (N-1,H,W,2) optical flow in pixels between training frames
      (fwd[i]: frame i -> i+1, bwd[i]: frame i+1 -> i); flow_fwd_valid / flow_bwd_valid: (N-1,H,W) bool.
    tracks: (Q,N,4) 2D tracks of Q query points over the N training frames:
      x, y in pixels, occlusion logit, expected-distance logit.
    points / point_colors: (P,3) sparse 3D points in world space and their RGB in [0,1].
    sharp_train: sharp versions of the training frames (for diagnostics, never for training).
    """

    flow_fwd: torch.Tensor | None = None
    flow_bwd: torch.Tensor | None = None
    flow_fwd_valid: torch.Tensor | None = None
    flow_bwd_valid: torch.Tensor | None = None
    tracks: torch.Tensor | None = None
    points: torch.Tensor | None = None
    point_colors: torch.Tensor | None = None
    sharp_train: LazyImages | None = None


@dataclass
class GroundTruth:
    """Ground truth known only for synthetic scenes.

    sharp_train: N sharp training frames (H,W,3). depth: (N,H,W) true depth of the training frames.
    motion_mask: (N,H,W) true dynamic mask. blur_type: "motion", "defocus" or "mixed".
    coc_radius: (N,H,W) defocus circle-of-confusion radius in pixels (None for pure motion).
    motion_disp: (N,S,H,W,2) displacement in pixels of each pixel's surface point at each of the
      S exposure sub-frames relative to the frame's mid-exposure instant (None for pure defocus).
    test_motion_mask: (N,H,W) true dynamic mask of the test (right) views.
    world_from_generator: (4,4) similarity mapping the generator's world points into the scene's
      world frame (the loader's scaling and recentring); used to check geometry against truth.
    regions: the pixels each method component addresses (docs/datasets.md §Synthetic), all (N,H,W):
      "unseen" / "emerging" bool masks of the test views, "test_blur_rms" / "train_blur_rms" float32
      RMS blur radii in pixels of the test and training views; None for data without them.
    """

    sharp_train: LazyImages
    depth: torch.Tensor
    motion_mask: torch.Tensor
    blur_type: str
    coc_radius: torch.Tensor | None = None
    motion_disp: torch.Tensor | None = None
    test_motion_mask: torch.Tensor | None = None
    world_from_generator: torch.Tensor | None = None
    regions: dict[str, torch.Tensor] | None = None


@dataclass
class Scene:
    """Everything a method needs to train on one scene and be evaluated on it.

    scale: the factor the loader applied to translations (1.0 if none).
    near, far: scene depth bounds after scaling.
    """

    dataset: str
    name: str
    blur_type: str
    train: Views
    test: Views
    near: float
    far: float
    scale: float = 1.0
    extras: Extras = field(default_factory=Extras)
    gt: GroundTruth | None = None
