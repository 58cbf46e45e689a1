"""The image backbone: a plain ViT that turns one hand crop into an H' x W' token map.

The layout and the parameter names follow the ViTPose backbone, which HaMeR (and the
4DHands authors' code) reuse unchanged, so their published weights load as they are (see
``fourdhands.model.weights``)::

    patch_embed.proj.{weight,bias}          Conv2d(3, C, P, stride P, padding 2)
    pos_embed                                (1, 1 + H'W', C), slot 0 the pre-training cls
    blocks.{i}.norm1 / .attn.qkv / .attn.proj / .norm2 / .mlp.fc1 / .mlp.fc2
    last_norm

Three details of that backbone are kept exactly, because a real checkpoint only gives its
features if they are:

- The patch convolution pads every side by 2 pixels (ViTPose's ``4 + 2 * (ratio // 2 - 1)``
  with ``ratio = 1``). With P = 16, a 256 x 192 crop still gives 16 x 12 tokens, but token
  (k, i) sees crop rows ``16k - 2 .. 16k + 13`` and columns ``16i - 2 .. 16i + 13``: its
  centre is 2 pixels up and left of the unpadded patch centre, and the last 2 rows and
  columns of the crop are never seen.
- The pre-training cls token is gone but its position embedding is not: slot 0 of
  ``pos_embed`` is added to every token, ``x + pos_embed[:, 1:] + pos_embed[:, :1]``.
- LayerNorm eps is 1e-6, GELU is the exact (erf) one, attention scale 1 / sqrt(head dim).

Inputs whose token grid differs from the configured one (e.g. 128 x 96 crops for the CPU
presets, with weights trained at 256 x 192) are supported: the patch part of ``pos_embed``
is resized to the input's grid with bicubic interpolation (``align_corners=False``, as
HaMeR's ``get_abs_pos`` and timm do) on every forward; the cls slot is kept as is.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

PATCH_PADDING = 2
"""Pixels of zero padding on each side of the patch convolution, as in ViTPose/HaMeR."""

LAYER_NORM_EPS = 1e-6


def token_grid(image_hw: tuple[int, int], patch_size: int) -> tuple[int, int]:
    """``(H', W')`` tokens for an ``image_hw = (H, W)`` input: the padded conv's output size."""
    return tuple((n + 2 * PATCH_PADDING - patch_size) // patch_size + 1 for n in image_hw)


@dataclass(frozen=True)
class ViTConfig:
    """The shape of a ViT backbone.

    ``image_size`` is ``(H, W)`` of the crops the position embedding is laid out for (the
    pre-training grid); other input sizes work by resizing it. ``drop_path`` is the
    stochastic-depth rate of the last block (linearly rising from 0 at the first block, as
    ViTPose does; HaMeR trains ViT-H with 0.55); it only acts in training mode.
    """

    embed_dim: int
    depth: int
    num_heads: int
    patch_size: int = 16
    image_size: tuple[int, int] = (256, 192)
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    drop_path: float = 0.0

    def __post_init__(self):
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by "
                             f"num_heads {self.num_heads}")
        # With a smaller patch the 2-pixel padding would add a row and column of tokens.
        if self.patch_size <= 2 * PATCH_PADDING:
            raise ValueError(f"patch_size must exceed {2 * PATCH_PADDING}, got {self.patch_size}")
        if min(self.image_size) < self.patch_size:
            raise ValueError(f"image_size {self.image_size} is smaller than one patch")
        if not 0.0 <= self.drop_path < 1.0:
            raise ValueError(f"drop_path must be in [0, 1), got {self.drop_path}")

    @property
    def grid(self) -> tuple[int, int]:
        """``(H', W')`` token grid of an ``image_size`` input (16 x 12 for 256 x 192, P = 16)."""
        return token_grid(self.image_size, self.patch_size)


VIT_PRESETS: dict[str, ViTConfig] = {
    "tiny": ViTConfig(embed_dim=192, depth=12, num_heads=3),
    "small": ViTConfig(embed_dim=384, depth=12, num_heads=6),
    "base": ViTConfig(embed_dim=768, depth=12, num_heads=12),
    "large": ViTConfig(embed_dim=1024, depth=24, num_heads=16),
    # The paper's backbone (ViTPose-H, as in HaMeR): 630,912,000 parameters.
    "huge": ViTConfig(embed_dim=1280, depth=32, num_heads=16),
}


def resize_pos_embed(
    pos_embed: torch.Tensor, src_grid: tuple[int, int], dst_grid: tuple[int, int]
) -> torch.Tensor:
    """Resample a ViTPose position embedding from one token grid to another.

    Args:
        pos_embed: ``(1, 1 + h * w, C)``, slot 0 the cls embedding, then the ``(h, w) =
            src_grid`` patches in row-major order.
        src_grid, dst_grid: ``(h, w)`` and ``(H, W)`` token grids.

    Returns:
        ``(1, 1 + H * W, C)``: the cls slot unchanged, the patch part resized bicubically
        (``align_corners=False``); ``pos_embed`` itself when the grids agree.
    """
    src_grid, dst_grid = tuple(src_grid), tuple(dst_grid)
    if pos_embed.shape[1] != 1 + src_grid[0] * src_grid[1]:
        raise ValueError(f"pos_embed of shape {tuple(pos_embed.shape)} does not fit "
                         f"a {src_grid} grid plus cls")
    if src_grid == dst_grid:
        return pos_embed
    cls, patches = pos_embed[:, :1], pos_embed[:, 1:]
    patches = patches.reshape(1, *src_grid, -1).permute(0, 3, 1, 2)
    patches = F.interpolate(patches, size=dst_grid, mode="bicubic", align_corners=False)
    return torch.cat([cls, patches.permute(0, 2, 3, 1).flatten(1, 2)], dim=1)


class PatchEmbed(nn.Module):
    """Cut the image into P x P patches (with ViTPose's 2-pixel padding) and project them."""

    def __init__(self, patch_size: int, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, patch_size, stride=patch_size, padding=PATCH_PADDING)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, H', W', C)``."""
        return self.proj(images).permute(0, 2, 3, 1)


class Attention(nn.Module):
    """Multi-head self-attention with one fused qkv projection (ViTPose's layout)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, C)`` -> ``(B, N, C)``."""
        b, n, c = x.shape
        # qkv's output features are ordered (q/k/v, head, head_dim), as in the checkpoints.
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    """``fc2(GELU(fc1(x)))``, ``(..., C)`` -> ``(..., C)``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero a residual branch for a random fraction ``p`` of the samples.

    Kept samples are scaled by ``1 / (1 - p)`` so the expectation is unchanged; identity
    outside training or for ``p = 0``. ``x``: ``(B, ...)``.
    """
    if not training or p == 0.0:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1.0 - p)
    return x * keep / (1.0 - p)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, drop_path: float
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, C)`` -> ``(B, N, C)``."""
        x = x + drop_path(self.attn(self.norm1(x)), self.drop_path, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)


class ViT(nn.Module):
    """A plain ViT over one crop, returning the channels-last token map.

    ``grad_checkpointing=True`` recomputes each block during backward instead of storing its
    activations (for training the large presets; about one extra forward of compute). It
    only acts when gradients are being recorded in training mode.

    Builds on any device, including ``meta`` (``with torch.device("meta"): ViT(cfg)``), to
    count parameters of the big presets without allocating them.
    """

    def __init__(self, config: ViTConfig, *, grad_checkpointing: bool = False):
        super().__init__()
        self.config = config
        self.grad_checkpointing = grad_checkpointing
        c = config.embed_dim
        self.patch_embed = PatchEmbed(config.patch_size, c)
        h, w = config.grid
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + h * w, c))
        rates = [config.drop_path * i / max(config.depth - 1, 1) for i in range(config.depth)]
        self.blocks = nn.ModuleList(
            Block(c, config.num_heads, config.mlp_ratio, config.qkv_bias, rate) for rate in rates
        )
        self.last_norm = nn.LayerNorm(c, eps=LAYER_NORM_EPS)
        self._init_weights()

    def _init_weights(self):
        # ViTPose's from-scratch initialisation; the patch conv keeps PyTorch's default.
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Encode crops.

        Args:
            images: ``(B, 3, H, W)`` float, normalised as the weights expect (ViTPose and
                HaMeR: ImageNet mean and std on RGB in [0, 1]).

        Returns:
            ``(B, H', W', C)`` tokens after ``last_norm``, ``(H', W') = token_grid((H, W), P)``.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        x = self.patch_embed(images)
        b, h, w, c = x.shape
        pos = resize_pos_embed(self.pos_embed, self.config.grid, (h, w))
        x = x.reshape(b, h * w, c) + pos[:, 1:] + pos[:, :1]
        recompute = self.grad_checkpointing and self.training and torch.is_grad_enabled()
        for block in self.blocks:
            x = checkpoint(block, x, use_reentrant=False) if recompute else block(x)
        return self.last_norm(x).reshape(b, h, w, c)
