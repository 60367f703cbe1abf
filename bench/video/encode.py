"""The one MP4 writer: the owner of the video format every video of the bench is written in.

H.264 (libx264) in an MP4 container, yuv420p pixels (what browsers decode), even width and height
(yuv420p halves the chroma planes) and the index at the front of the file (``movflags=faststart``,
so a browser plays it before it has read all of it). Written atomically: encoded into a hidden
temporary file of the same folder, then renamed over the target, so a reader never sees half a video
and an interrupted encode leaves the previous file as it was.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

CODEC = "libx264"
PIXEL_FORMAT = "yuv420p"
# CRF: x264's constant quality (lower is better; 18 looks lossless, 30+ is small and soft).
SHARP_CRF = 18


def even_size(n: int) -> int:
    """The even size at or below ``n`` (at least 2): yuv420p needs even width and height."""
    return max(2, n - n % 2)


def to_even(frame: np.ndarray) -> np.ndarray:
    """(H,W,3) uint8 -> cropped by at most one row and column to even H and W."""
    h, w = frame.shape[:2]
    return frame[: even_size(h), : even_size(w)]


def write_mp4(path: Path, frames: Iterable[np.ndarray], fps: int, crf: int = SHARP_CRF) -> Path:
    """Encode ``frames`` ((H,W,3) uint8 RGB, one size for all; odd sizes cropped to even) into an
    MP4 at ``path`` (atomically, see the module doc) at ``fps`` frames per second; returns ``path``.
    ValueError when there is no frame or the frames change size."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        _encode(tmp, frames, fps, crf, av)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _encode(tmp: Path, frames: Iterable[np.ndarray], fps: int, crf: int, av) -> None:
    with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream, size = None, None
        for frame in frames:
            frame = to_even(np.ascontiguousarray(frame, dtype=np.uint8))
            if stream is None:
                size = frame.shape[:2]
                stream = container.add_stream(CODEC, rate=fps)
                stream.height, stream.width = size
                stream.pix_fmt = PIXEL_FORMAT
                stream.options = {"crf": str(crf)}
            elif frame.shape[:2] != size:
                raise ValueError(f"video frame of size {frame.shape[1]}x{frame.shape[0]} after frames of "
                                 f"{size[1]}x{size[0]}: every frame of a video has one size")
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        if stream is None:
            raise ValueError("no frames to encode")
        container.mux(stream.encode())
