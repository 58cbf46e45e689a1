"""Regression heads: per-hand MANO parameters and crop camera, and the relative vector v.

The hand head is shared by both hands: the left crop is mirrored to look like a right
hand, so one head predicts right-hand parameters for both, and the left's are mirrored
back by the network. Rotations come out in the continuous 6D form (Zhou et al.) and are
turned into matrices by Gram-Schmidt; their zero output is the identity (a flat hand), and
the crop camera's scale is ``exp`` of its output so that it stays positive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..geometry.rotations import rot6d_to_matrix

_IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
_INITIAL_CROP_SCALE = 8.0  # s of a hand ~0.2 m filling ~80% of the crop: 2 / 0.2 * 0.8


@dataclass
class HandParams:
    """Per-hand regression output; leading dims `(...)`."""

    rotmats: Tensor  # (..., 16, 3, 3) global orient then the 15 finger joints
    betas: Tensor  # (..., 10)
    crop_cam: Tensor  # (..., 3) [s, tx, ty]


def _mlp(dim_in: int, hidden: int, dim_out: int) -> nn.Sequential:
    mlp = nn.Sequential(nn.Linear(dim_in, hidden), nn.GELU(), nn.Linear(hidden, dim_out))
    # start near the mean prediction (the biases below), yet let every weight learn at once
    nn.init.xavier_uniform_(mlp[-1].weight, gain=0.01)
    return mlp


class HandHead(nn.Module):
    """G* `(..., D)` -> :class:`HandParams`."""

    def __init__(self, dim: int, joints: int = 16, shape: int = 10):
        super().__init__()
        self.joints, self.shape = joints, shape
        self.mlp = _mlp(dim, dim, joints * 6 + shape + 3)
        with torch.no_grad():
            bias = self.mlp[-1].bias
            bias.zero_()
            bias[: joints * 6] = torch.tensor(_IDENTITY_6D).repeat(joints)
            bias[joints * 6 + shape] = math.log(_INITIAL_CROP_SCALE)

    def forward(self, features: Tensor) -> HandParams:
        out = self.mlp(features)
        j6, s = self.joints * 6, self.shape
        rot6d = out[..., :j6].reshape(*out.shape[:-1], self.joints, 6)
        cam = torch.cat([out[..., j6 + s: j6 + s + 1].exp(), out[..., j6 + s + 1:]], dim=-1)
        return HandParams(rot6d_to_matrix(rot6d), out[..., j6: j6 + s], cam)


class RelativeHead(nn.Module):
    """Both hands' G* `(..., 2, D)` -> v `(..., 3)`, left wrist minus right wrist (metres)."""

    def __init__(self, dim: int):
        super().__init__()
        self.mlp = _mlp(2 * dim, dim, 3)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, features: Tensor) -> Tensor:
        return self.mlp(features.flatten(-2))
