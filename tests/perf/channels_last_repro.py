"""Minimal reproduction: a conv -> ReLU -> InstanceNorm -> conv chain's weight gradients in
channels_last and in NCHW (contiguous) memory format against float64, on this torch and CPU.

Run: python tests/perf/channels_last_repro.py [--threads 1]
Prints, per layout, the largest relative error of each convolution's weight gradient (float32
against the same chain in float64). BP-Net (bench/method/bpnet.py) runs NCHW; its guard is
tests/test_method_blur.py::test_bpnet_float32_gradients_match_float64.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn as nn


def chain(width: int = 16) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(5, width, 5, padding=2), nn.ReLU(), nn.InstanceNorm2d(width),
                         nn.Conv2d(width, 32, 3, padding=1))


def weight_grads(model: nn.Sequential, x: torch.Tensor, weights: torch.Tensor, layout) -> list[torch.Tensor]:
    model = model.to(memory_format=layout)
    model.zero_grad()
    (model(x.contiguous(memory_format=layout)) * weights).sum().backward()
    return [model[0].weight.grad.double(), model[3].weight.grad.double()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    ns = parser.parse_args()
    torch.set_num_threads(ns.threads)
    torch.manual_seed(0)
    net = chain()
    x = torch.rand(1, 5, 72, 128)
    weights = torch.randn(1, 32, 72, 128)
    reference = chain().double()
    reference.load_state_dict(net.state_dict())
    ref = weight_grads(reference, x.double(), weights.double(), torch.contiguous_format)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); relative error of the weight "
          f"gradients against float64 (first conv, last conv)")
    for name, layout in (("NCHW", torch.contiguous_format), ("channels_last", torch.channels_last)):
        model = chain()
        model.load_state_dict(net.state_dict())
        got = weight_grads(model, x, weights, layout)
        errs = [((g - r).abs().max() / r.abs().max()).item() for g, r in zip(got, ref)]
        print(f"{name:<14} {errs[0]:.2e}  {errs[1]:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
