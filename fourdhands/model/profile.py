"""Size and cost of the network: parameter counts and FLOPs per frame, without weights.

Counting runs on PyTorch's ``meta`` device (shapes only, no memory, no arithmetic), so
even the ~0.7 B-parameter ``huge`` preset is measured in a second. FLOPs are PyTorch's
``FlopCounterMode`` counts (a multiply-add is 2 FLOPs; matmuls, convolutions and
attention; elementwise work is not counted).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from .config import ModelConfig
from .network import FourDHands


@dataclass
class Profile:
    """One config's size and cost. FLOPs are for both hands."""

    parameters: int
    backbone_parameters: int
    flops_single_frame: float  # one image (T=1)
    flops_window_per_frame: float  # a T-frame window, all frames encoded, / T
    flops_video_per_frame: float  # video with cached G: one frame's encode + one window's decode


def _inputs(config: ModelConfig, b: int, t: int, device) -> dict:
    h, w = config.image_size
    boxes = torch.tensor([[300.0, 240.0, 90.0, 120.0], [380.0, 250.0, 90.0, 120.0]], device=device)
    return dict(
        crops=torch.zeros(b, t, 2, 3, h, w, device=device),
        boxes=boxes.expand(b, t, 2, 4),
        image_size=torch.tensor([[640.0, 480.0]], device=device).expand(b, 2),
        holistic=torch.zeros(b, t, 3, h, w, device=device) if config.fusion == "holistic" else None,
        holistic_box=boxes[:1].expand(b, t, 4) if config.fusion == "holistic" else None,
    )


def count_flops(fn) -> float:
    """FLOPs that PyTorch counts while running ``fn()``.

    Runs with autograd on: FlopCounterMode's module tracker fails on outputs of modules
    whose parameters require grad when no graph is recorded (under ``no_grad``)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.enable_grad():
        fn()
    return float(counter.get_total_flops())


def profile(config: ModelConfig) -> Profile:
    """Count parameters and FLOPs of ``config`` on the meta device."""
    with torch.device("meta"):
        net = FourDHands(config)
    net.requires_grad_(False)  # no graph to keep: shapes only
    t = config.seq_len if config.temporal else 1
    x1 = _inputs(config, 1, 1, "meta")
    xt = _inputs(config, 1, t, "meta")
    single = count_flops(lambda: net(**x1))
    window = count_flops(lambda: net(**xt)) / t
    encode_one = count_flops(lambda: net.encode(x1["crops"], x1["boxes"], None, x1["holistic"]))
    features = torch.zeros(1, t, 2, config.decoder_dim, device="meta")
    decode_window = count_flops(lambda: net.decode(features, xt["boxes"], xt["image_size"],
                                                   holistic_box=xt["holistic_box"]))
    return Profile(
        parameters=sum(p.numel() for p in net.parameters()),
        backbone_parameters=sum(p.numel() for p in net.backbone.parameters()),
        flops_single_frame=single,
        flops_window_per_frame=window,
        flops_video_per_frame=encode_one + decode_window,
    )
