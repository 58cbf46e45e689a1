"""The registry of image backbones: a name -> how to build it and what it expects.

Every backbone turns a batch of crops ``(N, 3, H, W)`` (RGB in [0, 1], normalised by the
network with the spec's ``mean``/``std``) into a channels-last token map ``(N, h, w, C)``
in two steps, so that training can cache the first:

- ``trunk(x)``: the part that is kept frozen and whose output may be cached on disk;
- ``head(t)``: the rest, up to the tokens.

For a ViT the trunk is the identity (nothing is worth caching ahead of its blocks).

Names: the ViT presets (``tiny`` .. ``huge``, ViTPose / HaMeR layouts, for users who bring
those weights or train on a GPU) and ``mediapipe_hand``, MediaPipe's hand-landmark
network, pre-trained on real hands, whose weights are read from the installed mediapipe
wheel (:mod:`fourdhands.model.mediapipe_hand`). :data:`ALIASES` maps older names that
saved checkpoints may carry.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from torch import Tensor, nn

from ..errors import UserError
from .vit import VIT_PRESETS, ViT

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneSpec:
    """What the network needs to know of a backbone.

    build: ``crop (H, W) -> nn.Module`` with ``trunk``, ``head`` and ``forward``.
    mean, std: per-channel normalisation of [0, 1] RGB crops.
    width: channels C of the token map.
    has_pos_embed: whether the tokens already say where they are (else the spatial fusion
        adds 2D sine positions).
    input_size: the crop ``(H, W)`` the backbone requires, or None for any.
    external: prefix (within the backbone) of weights that come from outside the
        checkpoint, read when the backbone is built; checkpoints do not store them
        unless training changed them.
    """

    build: Callable[[tuple[int, int]], nn.Module]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    width: int
    has_pos_embed: bool
    input_size: tuple[int, int] | None = None
    external: str | None = None


class ViTBackbone(ViT):
    """:class:`~fourdhands.model.vit.ViT` with the registry's two steps (identity trunk);
    its parameter names stay the ViTPose / HaMeR ones."""

    def trunk(self, images: Tensor) -> Tensor:
        return images

    def head(self, images: Tensor) -> Tensor:
        return self(images)


class MediaPipeHandBackbone(nn.Module):
    """MediaPipe's hand-landmark network as a token backbone.

    The tokens are the 7 x 7 cells of its last feature map, ``(N, 7, 7, 1152)`` (the map
    that its own landmark, presence and handedness heads pool): the deepest, most
    hand-specific features it has, each cell a 32 x 32 pixel patch of the 224 x 224 crop,
    i.e. a patch grid laid out exactly as a ViT's, which RAT's Eq. (1) needs. The trunk
    ends on the 7 x 7 x 192 residual stream before the last expansion, 6x smaller to cache
    than the 1152-channel map, so the expansion and its depthwise convolution (the
    encoder's "top") can be fine-tuned on cached features.
    """

    def __init__(self):
        super().__init__()
        from .mediapipe_hand import load_mediapipe_hand

        self.encoder = load_mediapipe_hand()

    def trunk(self, images: Tensor) -> Tensor:
        """`(N, 3, 224, 224)` in [0, 1] -> `(N, 192, 7, 7)`."""
        return self.encoder.trunk(images)

    def head(self, trunk: Tensor) -> Tensor:
        """`(N, 192, 7, 7)` -> tokens `(N, 7, 7, 1152)`."""
        return self.encoder.top(trunk).permute(0, 2, 3, 1)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.trunk(images))


def _vit(preset: str) -> BackboneSpec:
    vit = VIT_PRESETS[preset]
    return BackboneSpec(build=lambda size: ViTBackbone(replace(vit, image_size=tuple(size))),
                        mean=IMAGENET_MEAN, std=IMAGENET_STD, width=vit.embed_dim, has_pos_embed=True)


BACKBONES: dict[str, BackboneSpec] = {
    **{name: _vit(name) for name in VIT_PRESETS},
    "mediapipe_hand": BackboneSpec(build=lambda size: MediaPipeHandBackbone(), mean=(0.0, 0.0, 0.0),
                                   std=(1.0, 1.0, 1.0), width=1152, has_pos_embed=False,
                                   input_size=(224, 224), external="encoder."),
}

ALIASES: dict[str, str] = {f"vit_{name}": name for name in VIT_PRESETS} | {"mediapipe": "mediapipe_hand"}
"""Other names a saved config may use for a registered backbone."""


def backbone_spec(name: str) -> BackboneSpec:
    """The spec of ``name`` (or of its alias); a one-line UserError for an unknown one."""
    spec = BACKBONES.get(ALIASES.get(name, name))
    if spec is None:
        raise UserError(f"unknown backbone {name!r} (one of {', '.join(BACKBONES)})")
    return spec
