"""The one MP4 writer (bench.video.encode): H.264 yuv420p, even sizes, index first, written atomically."""

from __future__ import annotations

import av
import numpy as np
import pytest

from bench.video.encode import write_mp4


def _frames(n: int, h: int, w: int):
    return [np.full((h, w, 3), 20 * i, np.uint8) for i in range(n)]


def decode(path) -> list[np.ndarray]:
    """Every frame of an MP4 as (H,W,3) uint8 RGB."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_an_mp4_holds_every_frame_in_h264_yuv420p_with_even_sizes_and_its_index_first(tmp_path):
    path = write_mp4(tmp_path / "v.mp4", _frames(7, 31, 45), fps=12)
    frames = decode(path)
    assert len(frames) == 7 and frames[0].shape == (30, 44, 3)  # odd sizes cropped to even
    assert abs(int(frames[3].mean()) - 60) <= 2  # the frames in order
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == 12
    head = path.read_bytes()
    assert head.index(b"moov") < head.index(b"mdat")  # faststart: a browser plays before the end arrives
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]  # no temporary file left


def test_a_failed_encode_leaves_the_previous_video_and_no_temporary_file(tmp_path):
    path = write_mp4(tmp_path / "v.mp4", _frames(3, 16, 16), fps=4)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="every frame of a video has one size"):
        write_mp4(path, _frames(2, 16, 16) + _frames(1, 32, 32), fps=4)
    with pytest.raises(ValueError, match="no frames"):
        write_mp4(path, [], fps=4)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["v.mp4"]
