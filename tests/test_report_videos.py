"""The report's comparison videos (bench.report.videos) on a hand-made sweep, and report.html's
embedded videos as a browser (headless Chromium) sees them."""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pytest

from bench import rundir, sweepdir
from browser import require_chromium
from report_fakes import fake_registry, make_sweep, tiny_scene, write_png
from test_video_encode import decode

H, W, N = 48, 64, 3
GREY = 0.2  # what the no_blur variant "rendered": one grey, told apart from the others in the video


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A sweep of two variants on two scenes with test renders, and its report built once."""
    from bench.report import build_all

    scenes = {("toy", s): tiny_scene("toy", s, h=H, w=W, n=N) for s in ("a", "b")}
    with pytest.MonkeyPatch.context() as mp:
        fake_registry(mp, scenes)
        values = {"psnr": 25.0, "ssim": 0.8, "lpips": 0.2}
        sweep = make_sweep(tmp_path_factory.mktemp("videos"), {v: {"a": values, "b": values}
                                                               for v in ("full", "no_blur")})
        for run in sorted(sweepdir.runs_dir(sweep).iterdir()):
            variant, _, scene = run.name.split("-")[:3]
            sc = scenes[("toy", scene)]
            for i, name in enumerate(sc.test.names):
                image = np.full((H, W, 3), GREY) if variant == "no_blur" else sc.test.images[i].numpy() * 0.9
                write_png(run / rundir.TEST_RENDERS / f"{name}.png", image)
        paths = build_all(sweep)
        yield sweep, paths, scenes


def test_one_video_per_scene_with_input_gt_and_one_panel_per_variant(report):
    sweep, paths, scenes = report
    videos = sorted(p for p in paths if p.suffix == ".mp4")
    assert videos == [sweep / sweepdir.VIDEOS / "toy_a.mp4", sweep / sweepdir.VIDEOS / "toy_b.mp4"]
    frames = decode(videos[0])
    assert len(frames) == N and frames[0].shape == (H, 4 * W, 3)  # input, GT, full, no_blur
    grey = [np.split(f[H // 2:].astype(float), 4, axis=1)[3].mean() / 255 for f in frames]
    assert grey == pytest.approx([GREY] * N, abs=0.03)  # the last panel is no_blur's render


def test_the_panels_are_input_gt_and_the_variants_in_order(report):
    """The frames as composed, before the (lossy) encoding: each panel is its image, labelled."""
    from bench.report.videos import _frames

    sweep, _, scenes = report
    sc = scenes[("toy", "a")]
    renders = {v: sweepdir.run_dir(sweep, f"{v}-toy-a-s0") / rundir.TEST_RENDERS for v in ("full", "no_blur")}
    frames = list(_frames(sc, renders))
    assert len(frames) == N
    for i, frame in enumerate(frames):
        panels = np.split(frame[H // 2:].astype(float) / 255, 4, axis=1)  # labels sit at the top left
        truth = [sc.train.images[i].numpy(), sc.test.images[i].numpy(), sc.test.images[i].numpy() * 0.9,
                 np.full((H, W, 3), GREY)]
        for k, (panel, t) in enumerate(zip(panels, truth)):
            assert np.abs(panel - t[H // 2:]).max() <= 1 / 255 + 1e-6
            corner = frame[:3, k * W + 1:k * W + 3].astype(float) / 255  # under the label's dark strip
            assert corner.mean() < t[:3, 1:3].mean() - 0.1


def test_report_html_embeds_every_video(report):
    sweep, paths, _ = report
    html = (sweep / sweepdir.REPORT).read_text()
    tags = re.findall(r"<video controls muted loop playsinline\s+src=\"data:video/mp4;base64,", html)
    assert len(tags) == 2 and "videos/toy_a.mp4" in html


# Appended to a copy of report.html: once every video has its metadata (or failed), write each one's
# duration (or error) into the page, which Chromium's --dump-dom prints.
PROBE = """<pre id="durations"></pre><script>
const videos = [...document.querySelectorAll("video")];
const show = () => { document.getElementById("durations").textContent =
  JSON.stringify(videos.map(v => v.error ? "error " + v.error.code : v.duration)); };
videos.forEach(v => { v.addEventListener("loadedmetadata", show); v.addEventListener("error", show); v.load(); });
</script>"""


def test_a_browser_plays_every_video_of_the_report(report, tmp_path):
    sweep, _, _ = report
    browser = require_chromium()
    page = tmp_path / "probe.html"
    page.write_text((sweep / sweepdir.REPORT).read_text().replace("</body>", PROBE + "</body>"))
    dom = subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu",
                          "--autoplay-policy=no-user-gesture-required", "--virtual-time-budget=20000",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'<pre id="durations">([^<]*)</pre>', dom)
    durations = json.loads(found.group(1)) if found and found.group(1) else None
    assert durations is not None and len(durations) == 2, dom[-2000:]
    assert all(isinstance(d, (int, float)) and d > 0 for d in durations), durations
