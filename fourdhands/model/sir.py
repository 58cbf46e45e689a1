"""SIR, Spatio-temporal Interaction Reasoning (paper section 3.3).

Three attention stages, each a small module:

1. :class:`SpatialFusion` ("adaptive spatial fusion"): self-attention over the tokens of
   both hands, ``M* (N, 2HW, C)``, so that each hand's tokens can draw on the other's as
   their (relation-aware) content suggests.
2. :class:`HandDecoder`: a transformer decoder with one learned query per hand that
   cross-attends to that hand's tokens, giving one global feature ``G`` per hand and frame
   (HaMeR-style).
3. :class:`TemporalFusion`: a transformer decoder over the ``T`` frames' features of both
   hands, with a sine encoding of each frame's offset from the window centre and a
   learned hand embedding, giving ``G*`` for the requested frames (the centre frame of a
   window by default). A single frame is repeated ``T`` times, as the paper says.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def _encoder_layer(dim: int, heads: int) -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=0.0,
                                      activation="gelu", batch_first=True, norm_first=True)


def _decoder_layer(dim: int, heads: int) -> nn.TransformerDecoderLayer:
    return nn.TransformerDecoderLayer(dim, heads, dim_feedforward=4 * dim, dropout=0.0,
                                      activation="gelu", batch_first=True, norm_first=True)


def sine_encoding(offsets: Tensor, dim: int) -> Tensor:
    """Transformer sine/cosine encoding of (possibly negative) frame offsets.

    Args:
        offsets: `(T,)` float, frame offsets from the window centre.
        dim: even feature width.
    Returns:
        `(T, dim)`: ``[sin(o w_k), cos(o w_k)]`` with ``w_k = 10000^(-2k/dim)``.
    """
    k = torch.arange(dim // 2, dtype=offsets.dtype, device=offsets.device)
    angles = offsets[:, None] * torch.exp(-math.log(10000.0) * 2.0 * k / dim)[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


def sine_positions(grid: tuple[int, int], dim: int, dtype=torch.float32, device=None) -> Tensor:
    """2D sine encoding of a token grid: `(h w, dim)`, the first half of the channels
    :func:`sine_encoding` of the row, the second of the column (``dim`` divisible by 4)."""
    h, w = grid
    rows = sine_encoding(torch.arange(h, dtype=dtype, device=device), dim // 2)
    cols = sine_encoding(torch.arange(w, dtype=dtype, device=device), dim // 2)
    return torch.cat([rows[:, None].expand(h, w, -1), cols[None].expand(h, w, -1)], -1).reshape(h * w, dim)


class SpatialFusion(nn.Module):
    """Self-attention over the concatenated tokens of both hands (or of one holistic crop).

    A learned embedding per token group (right hand, left hand) tells attention which
    hand a token came from. Where a token sits comes from the backbone's position
    embedding, or, for a backbone without one (``positions=True``), from a 2D sine
    encoding of its grid cell added here.
    """

    def __init__(self, dim: int, depth: int, heads: int, groups: int = 2, positions: bool = False):
        super().__init__()
        self.positions = positions
        self.group_embed = nn.Parameter(torch.zeros(groups, dim))
        self.encoder = nn.TransformerEncoder(_encoder_layer(dim, heads), depth,
                                             enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: Tensor, grid: tuple[int, int]) -> Tensor:
        """`(N, G, L, C)` tokens of G groups on an `(h, w)` grid (``L = h w``, row-major)
        -> `(N, G, L, C)` fused tokens."""
        n, g, l, c = tokens.shape
        x = tokens + self.group_embed[:g, None, :]
        if self.positions:
            x = x + sine_positions(grid, c, tokens.dtype, tokens.device)
        x = x.reshape(n, g * l, c)
        return self.norm(self.encoder(x)).reshape(n, g, l, c)


class HandDecoder(nn.Module):
    """One learned query per hand cross-attending to its tokens: the global feature G."""

    def __init__(self, token_dim: int, dim: int, depth: int, heads: int):
        super().__init__()
        self.project = nn.Linear(token_dim, dim)
        self.queries = nn.Parameter(torch.randn(2, dim) * 0.02)
        self.decoder = nn.TransformerDecoder(_decoder_layer(dim, heads), depth)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: Tensor) -> Tensor:
        """Tokens `(N, 2, L, C)` (hand h's query reads tokens[:, h]) -> G `(N, 2, dim)`."""
        n, hands, l, _ = tokens.shape
        memory = self.project(tokens).reshape(n * hands, l, -1)
        query = self.queries[None].expand(n, -1, -1).reshape(n * hands, 1, -1)
        return self.norm(self.decoder(query, memory)).reshape(n, hands, -1)


class TemporalFusion(nn.Module):
    """The temporal decoder: features of the requested frames attend to both hands'
    features over the whole window."""

    def __init__(self, dim: int, depth: int, heads: int):
        super().__init__()
        self.hand_embed = nn.Parameter(torch.zeros(2, dim))
        self.decoder = nn.TransformerDecoder(_decoder_layer(dim, heads), depth)
        self.norm = nn.LayerNorm(dim)

    def forward(self, features: Tensor, frames: Tensor) -> Tensor:
        """Fuse a window.

        Args:
            features: `(N, T, 2, D)` per-frame global features G of the two hands.
            frames: `(T_out,)` long, the frames (0..T-1) to predict.
        Returns:
            `(N, T_out, 2, D)` fused features G*.
        """
        n, t, hands, d = features.shape
        offsets = torch.arange(t, dtype=features.dtype, device=features.device) - (t - 1) / 2
        x = features + sine_encoding(offsets, d)[None, :, None] + self.hand_embed[None, None]
        memory = x.reshape(n, t * hands, d)
        query = x[:, frames].reshape(n, len(frames) * hands, d)
        return self.norm(self.decoder(query, memory)).reshape(n, len(frames), hands, d)
