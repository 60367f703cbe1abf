"""LPIPS weight files: check what is present, fetch the AlexNet backbone on a connected machine."""

from __future__ import annotations

from pathlib import Path

from bench.errors import BenchError
from bench.metrics import lpips_metric


def check() -> dict[str, tuple[Path, bool]]:
    """name -> (expected path, present) for the LPIPS linear layers and the AlexNet backbone."""
    lin = lpips_metric.linear_weights("0.1", "alex")
    ckpt = lpips_metric.alexnet_checkpoint()
    return {"lpips v0.1 alex linear layers": (lin, lin.is_file()),
            "torchvision AlexNet backbone": (ckpt, ckpt.is_file())}


def fetch() -> Path:
    """Download torchvision's AlexNet ImageNet weights into the torch hub cache; returns the file."""
    from torchvision.models import AlexNet_Weights

    ckpt = lpips_metric.alexnet_checkpoint()
    if ckpt.is_file():
        return ckpt
    try:
        # get_state_dict downloads through torch.hub into $TORCH_HOME/hub/checkpoints with a hash check.
        AlexNet_Weights.IMAGENET1K_V1.get_state_dict(progress=True, check_hash=True)
    except Exception as err:  # network errors come in many types (URLError, OSError, RuntimeError)
        raise BenchError(f"{AlexNet_Weights.IMAGENET1K_V1.url}: download failed ({err}); "
                         f"copy the file to {ckpt} by hand") from None
    return ckpt
