"""Reader for COLMAP binary models (``cameras.bin``, ``images.bin``, ``points3D.bin``).

Written from COLMAP's documented binary format (all little-endian):

- cameras.bin: uint64 count; per camera int32 id, int32 model id, uint64 width, uint64 height,
  then the model's parameters as float64 (count depends on the model).
- images.bin: uint64 count; per image int32 id, float64 qw qx qy qz (world-to-camera rotation),
  float64 tx ty tz, int32 camera id, a NUL-terminated name, uint64 number of 2D points, then per
  point float64 x, float64 y, int64 point3D id (-1 = none).
- points3D.bin: uint64 count; per point uint64 id, float64 x y z, uint8 r g b, float64 error,
  uint64 track length, then per track element int32 image id, int32 point2D index.

COLMAP cameras follow the OpenCV convention (x right, y down, z forward).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import BenchError

# model id -> (name, number of parameters)
CAMERA_MODELS = {
    0: ("SIMPLE_PINHOLE", 3), 1: ("PINHOLE", 4), 2: ("SIMPLE_RADIAL", 4), 3: ("RADIAL", 5), 4: ("OPENCV", 8),
    5: ("OPENCV_FISHEYE", 8), 6: ("FULL_OPENCV", 12), 7: ("FOV", 5), 8: ("SIMPLE_RADIAL_FISHEYE", 4),
    9: ("RADIAL_FISHEYE", 5), 10: ("THIN_PRISM_FISHEYE", 12),
}


@dataclass
class ColmapCamera:
    id: int
    model: str
    width: int
    height: int
    params: np.ndarray

    def K(self) -> np.ndarray:
        """(3,3) pinhole part of the model (distortion parameters are ignored)."""
        p = self.params
        if self.model in ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL", "SIMPLE_RADIAL_FISHEYE", "RADIAL_FISHEYE"):
            fx = fy = p[0]
            cx, cy = p[1], p[2]
        else:
            fx, fy, cx, cy = p[:4]
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


@dataclass
class ColmapImage:
    id: int
    qvec: np.ndarray
    tvec: np.ndarray
    camera_id: int
    name: str

    def w2c(self) -> np.ndarray:
        """(4,4) world-to-camera matrix from the unit quaternion (w, x, y, z) and translation."""
        w, x, y, z = self.qvec / np.linalg.norm(self.qvec)
        R = np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ])
        m = np.eye(4)
        m[:3, :3] = R
        m[:3, 3] = self.tvec
        return m


class _Reader:
    """Sequential little-endian reader that names the file in its errors."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.buf = path.read_bytes()
        except OSError as err:
            raise BenchError(f"{path}: expected a readable COLMAP binary file ({err.strerror})") from None
        self.pos = 0

    def take(self, fmt: str):
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.buf):
            raise BenchError(f"{self.path}: truncated COLMAP binary file (needed {size} bytes at offset {self.pos})")
        out = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += size
        return out

    def skip(self, nbytes: int) -> None:
        if self.pos + nbytes > len(self.buf):
            raise BenchError(f"{self.path}: truncated COLMAP binary file (needed {nbytes} bytes at offset {self.pos})")
        self.pos += nbytes

    def name(self) -> str:
        end = self.buf.find(b"\0", self.pos)
        if end < 0:
            raise BenchError(f"{self.path}: truncated COLMAP binary file (unterminated image name)")
        out = self.buf[self.pos:end].decode("utf-8", errors="replace")
        self.pos = end + 1
        return out

    def done(self) -> None:
        if self.pos != len(self.buf):
            raise BenchError(f"{self.path}: {len(self.buf) - self.pos} unexpected trailing bytes")


def read_cameras(path: Path) -> dict[int, ColmapCamera]:
    r = _Reader(Path(path))
    (count,) = r.take("Q")
    cams = {}
    for _ in range(count):
        cam_id, model_id, width, height = r.take("iiQQ")
        if model_id not in CAMERA_MODELS:
            raise BenchError(f"{path}: camera {cam_id} has unknown model id {model_id}")
        name, nparams = CAMERA_MODELS[model_id]
        cams[cam_id] = ColmapCamera(cam_id, name, width, height, np.array(r.take("d" * nparams)))
    r.done()
    return cams


def read_images(path: Path) -> dict[int, ColmapImage]:
    r = _Reader(Path(path))
    (count,) = r.take("Q")
    images = {}
    for _ in range(count):
        vals = r.take("idddddddi")
        name = r.name()
        (npts,) = r.take("Q")
        r.skip(24 * npts)  # x, y, point3D id per 2D point: not needed by the loaders
        images[vals[0]] = ColmapImage(vals[0], np.array(vals[1:5]), np.array(vals[5:8]), vals[8], name)
    r.done()
    return images


def read_points3d(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(P,3) float64 positions and (P,3) uint8 colours."""
    r = _Reader(Path(path))
    (count,) = r.take("Q")
    xyz = np.zeros((count, 3))
    rgb = np.zeros((count, 3), dtype=np.uint8)
    for i in range(count):
        vals = r.take("QdddBBBd")
        xyz[i] = vals[1:4]
        rgb[i] = vals[4:7]
        (track,) = r.take("Q")
        r.skip(8 * track)
    r.done()
    return xyz, rgb


def rotation_to_qvec(R: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) of a (3,3) rotation, w >= 0 (from the largest diagonal term)."""
    m = np.asarray(R, dtype=np.float64)
    # Row i of k is 4 * q_i * q; use the row of the largest |q_i| (numerically stable everywhere).
    k = np.eye(4) + np.array([
        [m[0, 0] + m[1, 1] + m[2, 2], m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]],
        [m[2, 1] - m[1, 2], m[0, 0] - m[1, 1] - m[2, 2], m[0, 1] + m[1, 0], m[0, 2] + m[2, 0]],
        [m[0, 2] - m[2, 0], m[0, 1] + m[1, 0], m[1, 1] - m[0, 0] - m[2, 2], m[1, 2] + m[2, 1]],
        [m[1, 0] - m[0, 1], m[0, 2] + m[2, 0], m[1, 2] + m[2, 1], m[2, 2] - m[0, 0] - m[1, 1]],
    ])
    i = int(np.argmax(np.diag(k)))
    q = k[i] / (2.0 * np.sqrt(k[i, i]))
    return q if q[0] >= 0 else -q


def write_model(sparse: Path, camera: ColmapCamera, images: list[ColmapImage], xyz: np.ndarray,
                rgb: np.ndarray) -> None:
    """Write cameras.bin (one camera), images.bin (no 2D points) and points3D.bin (empty tracks)."""
    model_ids = {name: mid for mid, (name, _) in CAMERA_MODELS.items()}
    sparse = Path(sparse)
    sparse.mkdir(parents=True, exist_ok=True)
    cams = struct.pack("<Q", 1) + struct.pack("<iiQQ", camera.id, model_ids[camera.model], camera.width,
                                               camera.height) + struct.pack(f"<{len(camera.params)}d", *camera.params)
    (sparse / "cameras.bin").write_bytes(cams)
    parts = [struct.pack("<Q", len(images))]
    for im in images:
        parts.append(struct.pack("<idddddddi", im.id, *im.qvec, *im.tvec, im.camera_id))
        parts.append(im.name.encode("utf-8") + b"\0" + struct.pack("<Q", 0))
    (sparse / "images.bin").write_bytes(b"".join(parts))
    parts = [struct.pack("<Q", len(xyz))]
    for i, (p, c) in enumerate(zip(xyz, rgb), start=1):
        parts.append(struct.pack("<QdddBBBdQ", i, *p, *(int(v) for v in c), 0.0, 0))
    (sparse / "points3D.bin").write_bytes(b"".join(parts))
