"""LPIPS (AlexNet or VGG, v0.1) through the ``lpips`` package without any download at evaluation time.

The linear layers ship inside the ``lpips`` package; the backbone is the torchvision ImageNet
checkpoint in the torch hub cache (``$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth`` or
``vgg16-397923af.pth``). We build ``lpips.LPIPS(pnet_rand=True)`` (so torchvision never tries to
download) and load the backbone ourselves. ``bench weights fetch`` puts the AlexNet checkpoint there
on a connected machine; the VGG one (dydeblur's network for DyBluRF-layout scenes) is copied by hand.
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import numpy as np

# torchvision's ImageNet checkpoints of the backbones (used when torchvision cannot name them).
BACKBONE_URLS = {"alex": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
                 "vgg": "https://download.pytorch.org/models/vgg16-397923af.pth"}
ALEXNET_URL = BACKBONE_URLS["alex"]
BACKBONE_NAMES = {"alex": "AlexNet", "vgg": "VGG16"}


def hub_checkpoint_dir() -> Path:
    """The torch hub checkpoint folder ($TORCH_HOME/hub/checkpoints, default ~/.cache/torch/hub/checkpoints)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def backbone_checkpoint(net: str = "alex") -> Path:
    """Where the torchvision backbone checkpoint of LPIPS network ``net`` (alex, vgg) is expected (it
    may not exist)."""
    try:
        from torchvision.models import AlexNet_Weights, VGG16_Weights

        url = {"alex": AlexNet_Weights, "vgg": VGG16_Weights}[net].IMAGENET1K_V1.url
    except ImportError:
        url = BACKBONE_URLS[net]
    return hub_checkpoint_dir() / os.path.basename(url)


def alexnet_checkpoint() -> Path:
    """Where the AlexNet backbone checkpoint is expected (it may not exist)."""
    return backbone_checkpoint("alex")


def linear_weights(version: str = "0.1", net: str = "alex") -> Path:
    """The linear-layer weights shipped inside the lpips package."""
    import lpips

    return Path(lpips.__file__).parent / "weights" / f"v{version}" / f"{net}.pth"


def missing_reason(net: str = "alex", version: str = "0.1") -> str | None:
    """Why LPIPS with backbone ``net`` cannot be computed offline, or None when every weight file is present."""
    if net not in BACKBONE_URLS:
        return f"LPIPS net {net!r}: expected one of {', '.join(BACKBONE_URLS)}"
    try:
        lin = linear_weights(version, net)
    except ImportError:
        return "the lpips package is not installed"
    if not lin.is_file():
        return f"{lin}: lpips linear-layer weights missing (reinstall lpips)"
    ckpt = backbone_checkpoint(net)
    if not ckpt.is_file():
        fix = ("run `bench weights fetch` on a connected machine" if net == "alex" else
               f"copy {BACKBONE_URLS[net]} there from a connected machine")
        # This text is what a table's LPIPS footnote shows, so it says how to fill the column in.
        return (f"{ckpt}: {BACKBONE_NAMES[net]} backbone weights missing; {fix}, then `bench eval SWEEP` "
                "(or RUN_DIR) re-scores the saved renders")
    return None


def backbone_state_for_lpips(model, torchvision_state: dict) -> dict:
    """Rename torchvision AlexNet / VGG16 keys (``features.<i>.<p>``) to lpips' slices
    (``slice<k>.<i>.<p>``): lpips keeps each layer under its torchvision index."""
    mapped = {}
    for name, _ in model.net.named_parameters():
        _, index, param = name.split(".")
        mapped[name] = torchvision_state[f"features.{index}.{param}"]
    return mapped


class LPIPSMetric:
    """LPIPS on (H,W,3) float images in [0,1]: a full-image value and a mask-averaged spatial value.

    input_range: ``scaled`` feeds 2x-1 (the package's convention), ``unscaled`` feeds [0,1] as
    upstream dydeblur did. net: ``alex`` or ``vgg``. backbone_path: a torchvision state dict of that
    network (default: hub cache; only its ``features.*`` entries are read).
    """

    def __init__(self, input_range: str = "scaled", version: str = "0.1", backbone_path: Path | None = None,
                 device: str = "cpu", net: str = "alex"):
        import lpips
        import torch

        path = Path(backbone_path) if backbone_path else backbone_checkpoint(net)
        state = torch.load(path, map_location="cpu", weights_only=True)
        with warnings.catch_warnings():
            # pnet_rand=True passes pretrained=False to torchvision (deprecated keyword): no download.
            warnings.simplefilter("ignore", UserWarning)
            model = lpips.LPIPS(pretrained=True, net=net, version=version, pnet_rand=True, verbose=False)
        model.net.load_state_dict(backbone_state_for_lpips(model, state))
        # The spatial variant shares every weight; only its forward differs (per-layer maps upsampled).
        spatial = copy.deepcopy(model)
        spatial.spatial = True
        self.models = {False: model.eval().to(device), True: spatial.eval().to(device)}
        self.input_range = input_range
        self.net = net
        self.device = device

    def _tensor(self, image: np.ndarray, input_range: str | None = None):
        import torch

        t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
        if (input_range or self.input_range) == "scaled":
            t = t * 2.0 - 1.0
        return t.to(self.device)

    def __call__(self, pred: np.ndarray, gt: np.ndarray, input_range: str | None = None) -> float:
        """Full-image LPIPS of (H,W,3) images in [0,1]; input_range overrides this metric's range."""
        import torch

        with torch.no_grad():
            return float(self.models[False](self._tensor(pred, input_range), self._tensor(gt, input_range)).item())

    def spatial_map(self, pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
        """(H,W) LPIPS map (each layer's distance upsampled to the image size, summed)."""
        import torch

        with torch.no_grad():
            out = self.models[True](self._tensor(pred), self._tensor(gt))
        return out[0, 0].cpu().numpy().astype(np.float64)
