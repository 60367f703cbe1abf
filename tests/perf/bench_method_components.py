"""Method component benchmark on CPU: BP-Net + blur formation, virtual views, DGD, motion init.

Run: python tests/perf/bench_method_components.py [--repeats 3] [--threads 1] [--height 72 --width 128]
Prints median milliseconds of: BP-Net forward and forward+backward with blur formation (K = 9, each
kernel family), building the 4(N-1) virtual views of N = 24 frames (forward warp + inpainting),
dynamic Gaussian densification over 24 views, and motion-basis initialisation from flow. Inputs are
random but shaped like a training scene. Other processes on the machine make figures fluctuate.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.data.scene import Cameras, Extras, LazyImages, Scene, Views  # noqa: E402
from bench.method.bpnet import BPNet  # noqa: E402
from bench.method.densify import dynamic_gaussian_densification  # noqa: E402
from bench.method.geometry import backproject  # noqa: E402
from bench.method.kernels import blur_formation  # noqa: E402
from bench.method.motion import MotionBases, init_from_flow_or_tracks  # noqa: E402
from bench.method.unseen import build_virtual_views  # noqa: E402

N_FRAMES = 24


def timed(fn, repeats: int) -> float:
    """Median wall milliseconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def fake_views(H: int, W: int) -> Views:
    """N_FRAMES views of a camera sliding along x in front of a plane at depth 4 with a dynamic blob."""
    g = torch.Generator().manual_seed(0)
    f = 0.8 * W
    K = torch.tensor([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]]).expand(N_FRAMES, 3, 3).clone()
    w2c = torch.eye(4).repeat(N_FRAMES, 1, 1)
    w2c[:, 0, 3] = -torch.linspace(0, 1, N_FRAMES)
    mask = torch.zeros(N_FRAMES, H, W)
    mask[:, H // 3:2 * H // 3, W // 3:W // 2] = 1
    depth = 4 + 0.1 * torch.rand(N_FRAMES, H, W, generator=g)
    images = torch.rand(N_FRAMES, H, W, 3, generator=g)
    return Views(names=[str(i) for i in range(N_FRAMES)], cameras=Cameras(K, w2c, W, H),
                 images=LazyImages.from_tensor(images), frame_index=torch.arange(N_FRAMES),
                 time=torch.linspace(0, 1, N_FRAMES), depth=depth, motion_mask=mask)


def bench_bpnet(H: int, W: int, repeats: int) -> None:
    g = torch.Generator().manual_seed(1)
    rgb, depth = torch.rand(1, 3, H, W, generator=g), torch.rand(1, 1, H, W, generator=g) + 1
    dyn, target = torch.zeros(1, 1, H, W), torch.rand(1, 3, H, W, generator=g)
    sharp = rgb.clone().requires_grad_()
    for kind in ("full", "defocus", "motion"):
        net = BPNet(N_FRAMES, 9, kind)
        idx = torch.tensor([3])

        def fwd():
            with torch.no_grad():
                k, m = net(idx, rgb, depth, dyn)
                blur_formation(rgb, k, m)

        def fwd_bwd():
            k, m = net(idx, sharp, depth, dyn)
            (blur_formation(sharp, k, m) - target).abs().mean().backward()

        print(f"bpnet {kind:8s} {W}x{H}: forward {timed(fwd, repeats):8.1f} ms   "
              f"forward+backward {timed(fwd_bwd, repeats):8.1f} ms")


def bench_scene_ops(H: int, W: int, repeats: int) -> None:
    views = fake_views(H, W)
    c2w = torch.linalg.inv(views.cameras.w2c)
    ms = timed(lambda: build_virtual_views(c2w, views.cameras.K, views.images.stack(), views.depth,
                                           views.motion_mask), max(1, repeats // 2))
    print(f"virtual views ({4 * (N_FRAMES - 1)} from {N_FRAMES} frames, {W}x{H}): {ms:8.1f} ms")
    bases = MotionBases(20, N_FRAMES)
    dyn = backproject(views.depth[0], views.cameras.K[0], c2w[0], views.motion_mask[0] > 0)
    coef = torch.randn(dyn.shape[0], 20)
    ms = timed(lambda: dynamic_gaussian_densification(views, bases, dyn, coef,
                                                      generator=torch.Generator().manual_seed(0)), repeats)
    print(f"DGD ({N_FRAMES} views, {dyn.shape[0]} dynamic Gaussians): {ms:8.1f} ms")
    flow = torch.zeros(N_FRAMES - 1, H, W, 2)
    flow[..., 0] = 0.5
    extras = Extras(flow_fwd=flow, flow_bwd=-flow)
    scene = Scene("bench", "bench", "motion", views, views, 1.0, 10.0, extras=extras)
    ms = timed(lambda: init_from_flow_or_tracks(MotionBases(20, N_FRAMES), dyn, scene, N_FRAMES // 2), repeats)
    print(f"motion init from flow ({dyn.shape[0]} dynamic points): {ms:8.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--height", type=int, default=72)
    ap.add_argument("--width", type=int, default=128)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    bench_bpnet(args.height, args.width, args.repeats)
    bench_scene_ops(args.height, args.width, args.repeats)


if __name__ == "__main__":
    main()
