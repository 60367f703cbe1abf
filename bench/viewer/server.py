"""The viewer: a viser server showing each connected browser a render of the trained run from that
browser's camera, at the time and as the panel its controls choose.

Renders run on one worker thread, so viser's event loop stays responsive while the renderer works;
camera moves and control changes only mark clients as due for a render, and the worker renders each
due client's latest camera once per burst of changes (a drag sends many camera messages)."""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import socket
import sys
import threading
import time
import warnings

import numpy as np
import torch
import viser

from bench.errors import BenchError
from bench.method.saved_run import SavedRun
from bench.viewer import panels
from bench.viewer.cameras import fov_y, intrinsics, render_size, viser_pose, w2c_from_viser

# Camera messages arriving within this many seconds of the first are served by one render.
DEBOUNCE_S = 0.02


def check_port(host: str, port: int) -> None:
    """BenchError naming ``host:port`` when nothing can listen there (viser would silently move to
    the next free port, and the printed URL would lie)."""
    try:
        socket.create_server((host, port)).close()
    except OSError as err:
        why = "already in use" if err.errno == errno.EADDRINUSE else f"cannot listen there ({err.strerror})"
        raise BenchError(f"port {port} on {host}: {why}; choose another with --port") from None


def _quiet_stdout() -> contextlib.AbstractContextManager:
    """Swallow viser's own banner and stop notice (printed to stdout whatever its ``verbose``), so
    the viewer's stdout is its one URL line."""
    return contextlib.redirect_stdout(io.StringIO())


def _quiet_dropped_connections() -> None:
    """Keep dropped browsers off stderr: websockets logs the speculative connections browsers open
    and drop as failed handshakes with a traceback, and viser warns when a render finishes for a
    browser closed meanwhile; neither is a fault of the viewer."""
    warnings.filterwarnings("ignore", message=r"Queued a \w+ on a closed connection")
    log = logging.getLogger("websockets.server")
    if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
        log.addHandler(logging.NullHandler())
    log.propagate = False


class Viewer:
    """A trained run served to browsers at ``url`` once :meth:`start`-ed, until :meth:`stop`.

    ``width``: render width in pixels (default the test views'); the height follows each browser
    view's aspect. ``frames_sent`` counts the renders sent to browsers (``frame_sent`` is set at the
    first), so a caller can tell that a browser got a picture. Once started, ``time``, ``panel`` and
    ``show_cameras`` are the GUI's handles (setting a ``value`` acts as a browser's change does)."""

    def __init__(self, saved: SavedRun, host: str = "127.0.0.1", port: int = 8080, width: int | None = None):
        self.saved = saved
        self.host, self.port = host, port
        self.width = width or saved.data.test_W
        self.frames_sent = 0
        self.frame_sent = threading.Event()
        self._due: set[int] = set()
        self._wake = threading.Condition()
        self._stopping = False
        self._server: viser.ViserServer | None = None
        self._worker: threading.Thread | None = None
        self._frustum_handles: list = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Listen at ``url`` (BenchError when its port is taken) and start rendering for browsers."""
        check_port(self.host, self.port)
        _quiet_dropped_connections()
        with _quiet_stdout():
            server = viser.ViserServer(host=self.host, port=self.port, label="bench view", verbose=False)
        if server.get_port() != self.port:  # taken between the check and viser's bind
            with _quiet_stdout():
                server.stop()
            raise BenchError(f"port {self.port} on {self.host}: already in use; choose another with --port")
        self._server = server
        self._controls(server)
        self._initial_camera(server)
        self._frustums(server)
        server.on_client_connect(self._connected)
        self._worker = threading.Thread(target=self._render_loop, name="bench-view-render", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        """Stop rendering (the render under way finishes) and the server; returns when both ended."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._worker is not None:
            self._worker.join()
        if self._server is not None:
            with _quiet_stdout():
                self._server.stop()

    def _controls(self, server: viser.ViserServer) -> None:
        """The time slider (0..1 over the training frames), the panel dropdown (what the run can
        show) and the training cameras' checkbox; a change re-renders every browser."""
        d = self.saved.data
        t0 = float(d.test_frame[0]) / max(d.n - 1, 1)
        self.time = server.gui.add_slider("time", 0.0, 1.0, 0.001, t0,
                                          hint=f"0..1 over the {d.n} training frames")
        self.panel = server.gui.add_dropdown("panel", panels.available(self.saved.bpnet is not None),
                                             initial_value=panels.SHARP)
        self.show_cameras = server.gui.add_checkbox("training cameras", False)
        self.time.on_update(lambda _: self._request_all())
        self.panel.on_update(lambda _: self._request_all())
        self.show_cameras.on_update(lambda _: self._toggle_frustums())

    def _initial_camera(self, server: viser.ViserServer) -> None:
        """Browsers open at the first test camera, looking at mid-depth, the scene's up its up."""
        d, scene = self.saved.data, self.saved.scene
        w2c = d.test_w2c[0].cpu().double().numpy()
        _, centre = viser_pose(w2c)
        axes = np.linalg.inv(w2c)[:3, :3]  # columns: the camera's x, y, z in world
        up = -axes[:, 1]
        server.scene.set_up_direction(up)
        server.initial_camera.up = up
        server.initial_camera.position = centre
        server.initial_camera.look_at = centre + axes[:, 2] * 0.5 * (scene.near + scene.far)
        server.initial_camera.fov = fov_y(d.test_K[0].cpu().numpy(), d.test_H)

    def _frustums(self, server: viser.ViserServer) -> None:
        """The training cameras as frustums, hidden until the checkbox shows them."""
        d = self.saved.data
        for name, K, w2c in zip(d.names, d.K.cpu().numpy(), d.w2c.cpu().double().numpy()):
            wxyz, position = viser_pose(w2c)
            self._frustum_handles.append(server.scene.add_camera_frustum(
                f"/training_cameras/{name}", fov=fov_y(K, d.H), aspect=d.W / d.H,
                scale=0.1 * self.saved.scene.near, wxyz=wxyz, position=position, visible=False))

    def _toggle_frustums(self) -> None:
        for handle in self._frustum_handles:
            handle.visible = self.show_cameras.value

    def _connected(self, client: viser.ClientHandle) -> None:
        client.camera.on_update(lambda camera: self._request(camera.client.client_id))
        self._request(client.client_id)

    def _request(self, client_id: int) -> None:
        with self._wake:
            self._due.add(client_id)
            self._wake.notify()

    def _request_all(self) -> None:
        for client_id in self._server.get_clients():
            self._request(client_id)

    def _render_loop(self) -> None:
        """The worker: wait for due clients, let a burst of changes settle, render each once."""
        while True:
            with self._wake:
                while not self._due and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
            time.sleep(DEBOUNCE_S)
            with self._wake:
                due, self._due = self._due, set()
            try:
                clients = self._server.get_clients()
            except Exception as err:  # the worker must outlive a failure of the server's bookkeeping
                print(f"bench view: error: {type(err).__name__}: {err}", file=sys.stderr)
                continue
            for client_id in due & clients.keys():
                self._render_for(clients[client_id])

    def _render_for(self, client: viser.ClientHandle) -> None:
        """Render ``client``'s current camera and send it as its background. A failed render is
        reported on stderr and the viewer serves on (the next change renders again)."""
        try:
            image = self._image(client.camera)
        except Exception as err:  # a failure of one view must not end the server
            print(f"bench view: error: rendering failed: {type(err).__name__}: {err}", file=sys.stderr)
            return
        client.scene.set_background_image(image, format="jpeg", jpeg_quality=90)
        client.flush()
        self.frames_sent += 1
        self.frame_sent.set()

    def _image(self, camera: viser.CameraHandle) -> np.ndarray:
        """(H,W,3) uint8 panel of ``camera``'s view at the slider's time."""
        d = self.saved.data
        aspect = camera.aspect if camera.image_height > 0 and camera.image_width > 0 else d.test_W / d.test_H
        width, height = render_size(self.width, aspect)
        K = torch.from_numpy(intrinsics(camera.fov, width, height)).float()
        w2c = torch.from_numpy(w2c_from_viser(camera.wxyz, camera.position)).float()
        frame = float(self.time.value) * (d.n - 1)
        return panels.panel_image(self.saved, K, w2c, width, height, frame, str(self.panel.value))
