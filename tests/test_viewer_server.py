"""bench/viewer/server.py and ``bench view``: a browser (headless Chromium) connected to the viewer
of a trained tiny run gets a rendered frame; the server stops cleanly on stop() and on Ctrl-C; a
taken port or a run without a checkpoint is one line and exit 2."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from bench import rundir
from bench.cli import main
from bench.method.saved_run import SavedRun
from bench.viewer import panels
from bench.viewer.cameras import fov_y, w2c_from_viser
from bench.viewer.server import Viewer

from browser import require_chromium
from method_tiny import H, W, trained_once

TESTS = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A trained tiny run, trained once for the module (the tiny scene served while it trains)."""
    yield from trained_once(tmp_path_factory, "view")


def test_a_taken_port_is_one_line_and_exit_2(tmp_path, capsys):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["view", str(tmp_path), "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"port {port}" in err and "in use" in err and "--port" in err


def test_a_directory_that_is_not_a_run_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["view", str(tmp_path), "--port", str(_free_port())]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("bench view: error:") and "config.yaml" in err


@pytest.mark.slow
def test_a_run_without_its_final_checkpoint_is_one_line_and_exit_2(trained, tmp_path, capsys):
    shutil.copy(trained / rundir.CONFIG, tmp_path / rundir.CONFIG)
    assert main(["view", str(tmp_path), "--port", str(_free_port())]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "final checkpoint" in err


@pytest.mark.slow
def test_every_panel_renders_an_image_of_the_view(trained, tiny):
    saved = SavedRun.load(trained, device="cpu")
    d = saved.data
    images = {p: panels.panel_image(saved, d.test_K[0], d.test_w2c[0], W, H, 1.5, p)
              for p in panels.available(True)}
    assert all(img.shape == (H, W, 3) and img.dtype.name == "uint8" for img in images.values())
    assert len({img.tobytes() for img in images.values()}) == 4  # four different pictures
    with pytest.raises(ValueError, match="panel 'normals'"):
        panels.panel_image(saved, d.test_K[0], d.test_w2c[0], W, H, 1.5, "normals")


def _poll(condition, seconds: float = 60.0) -> bool:
    """Whether ``condition()`` became true within ``seconds`` (checked every 0.1 s)."""
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.1)
    return True


def _at_first_test_camera(viewer: Viewer) -> bool:
    """Whether the one connected browser's camera is the run's first test camera (pose and fov)."""
    clients = list(viewer._server.get_clients().values())
    if len(clients) != 1:
        return False
    camera, d = clients[0].camera, viewer.saved.data
    w2c = w2c_from_viser(camera.wxyz, camera.position)
    return (np.abs(w2c - d.test_w2c[0].double().numpy()).max() < 1e-5
            and abs(camera.fov - fov_y(d.test_K[0].numpy(), d.test_H)) < 1e-6)


@pytest.mark.slow
def test_a_browser_gets_rendered_frames_at_the_first_test_camera_and_the_server_stops(trained, tiny, tmp_path):
    chromium = require_chromium()
    viewer = Viewer(SavedRun.load(trained, device="cpu"), port=_free_port())
    viewer.start()
    browser = subprocess.Popen([chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                                f"--user-data-dir={tmp_path / 'chromium'}", "--remote-debugging-port=0",
                                viewer.url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        arrived = viewer.frame_sent.wait(60)
        at_test_camera = _poll(lambda: _at_first_test_camera(viewer))
        sent = viewer.frames_sent
        viewer.panel.value = panels.DEPTH  # a control change renders again
        rerendered = _poll(lambda: viewer.frames_sent > sent)
    finally:
        browser.terminate()
        browser.wait(30)
        viewer.stop()
    assert arrived and at_test_camera and rerendered
    assert not viewer._worker.is_alive()
    assert not [t for t in threading.enumerate() if t.name == "bench-view-render"]
    with pytest.raises(OSError):
        urllib.request.urlopen(viewer.url, timeout=5)


# The CLI in a child process with the tiny scene registered (the data registry cannot find it otherwise).
_CHILD = """
import sys
sys.path.insert(0, {tests!r})
import method_tiny
import bench.data.registry as registry
scene = method_tiny.tiny_scene()
registry.load_scene = lambda dataset, name, data_root=None: scene
from bench.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_bench_view_prints_its_url_serves_the_page_and_exits_130_on_ctrl_c(trained):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(TESTS.parent)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD.format(tests=str(TESTS)), "view", str(trained),
                              "--port", str(port), "--device", "cpu"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = child.stdout.readline().strip()
        assert url == f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(url, timeout=30) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 130 and out.strip() == ""  # the URL was the one line on stdout
    assert "Traceback" not in err and err.strip() == "bench: interrupted"
