"""Relation-aware Two-Hand Tokenization (RAT), section 3.2 of the paper, Eq. (1)-(4).

Each hand is cropped from the image by its box ``[cx, cy, sx, sy]`` (original-image
pixels, see :mod:`fourdhands.geometry.crop`) and tokenized by the ViT into an ``H x W``
token grid. RAT tells every token where the other hand is:

- Eq. (1), position map: the image point of every patch centre, :func:`patch_centres`.
- Eq. (2), relative distance map: ``D_R2L = sigmoid(tau (C_R - C_L) / s_R)`` and
  ``D_L2R = sigmoid(tau (C_L - C_R) / s_L)``, each hand's offsets in units of its own box.
- Eq. (3), overlap map: +1 where the hand's patch centre lies inside the other hand's box.
- Eq. (4), ``R_R2L = MLP(D_R2L + D_L2R + O_R2L)`` (``+`` = channel concatenation, 5
  channels), joined to the tokens by :class:`RelationEmbedding`.

Choices the paper leaves open (stated once here, used throughout):

- ``tau`` (:data:`DEFAULT_TAU` = 1). Offsets are measured in box sizes, so with tau = 1 a
  hand one box away gives sigmoid(1) = 0.73, three boxes 0.95, and the map only saturates
  (within 1 %) beyond about 4.6 box sizes: it resolves the interacting-hands range (offsets
  below a box or two) and goes flat exactly when the hands are "far away", as the paper's
  "activated when two hands are close" asks. Configurable everywhere.
- Inside (Eq. 3) is inclusive: a centre exactly on the other box's edge counts as inside,
  i.e. the box is the closed set that its crop covers (crop pixels run over ``[0, w]``).
- Patch ``p`` of one hand is paired with patch ``p`` (same row and column) of the other
  hand in Eq. (2), as the equation is written.
- The left-crop mirror and the far-away box for a missing hand: see
  :func:`relation_inputs` and :func:`far_away_box`.
- Rotated crops (``angles``, the crop's turn as in
  :func:`fourdhands.geometry.crop.box_to_crop_affine`): patch centres turn with the crop,
  "inside" is tested in the other crop's own axes, and Eq. (2)'s offsets are measured in
  each hand's own crop axes, so the maps describe what each token sees whichever way its
  crop was turned. With all angles 0 everything is the axis-aligned definition above.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

__all__ = [
    "DEFAULT_TAU",
    "FAR_AWAY_DISTANCE",
    "RelationEmbedding",
    "far_away_box",
    "patch_centres",
    "relation_inputs",
    "relation_maps",
]

DEFAULT_TAU = 1.0
"""tau of Eq. (2) (the paper gives no value); offsets are in box sizes, see the module doc."""

FAR_AWAY_DISTANCE = 50.0
"""How far :func:`far_away_box` moves the box, in box sizes along each axis.

sigmoid(-tau * 50) is 2e-22 at the default tau, and stays below 1e-6 for any tau >= 0.28."""


def _turn(offsets: Tensor, angle: Tensor | None, inverse: bool = False) -> Tensor:
    """Offsets `(B, ..., 2)` turned by the crops' angles `(B,)` (crop axes -> image axes),
    or back with ``inverse``; unchanged when ``angle`` is None."""
    if angle is None:
        return offsets
    shape = (-1,) + (1,) * (offsets.dim() - 2)
    c, s = torch.cos(angle).reshape(shape), torch.sin(angle).reshape(shape)
    s = -s if inverse else s
    x, y = offsets[..., 0], offsets[..., 1]
    return torch.stack([c * x - s * y, s * x + c * y], dim=-1)


def patch_centres(box: Tensor, grid: tuple[int, int], angle: Tensor | None = None) -> Tensor:
    """Position map of Eq. (1): the image point at the centre of every patch of a box's crop.

    The paper prints ``cx + (2i - W) sx / (2W)``, which is the patch's left edge for a
    0-based column ``i``; the centre adds half a patch. For column ``i`` and row ``k``::

        C(p) = [cx + (2i + 1 - W) sx / (2W),  cy + (2k + 1 - H) sy / (2H)]

    For a crop turned by ``angle`` the offsets from the centre turn with it.

    Args:
        box: ``(B, 4)`` as ``[cx, cy, sx, sy]`` in image pixels.
        grid: ``(H, W)`` token grid.
        angle: optional ``(B,)`` crop angles in radians.

    Returns:
        ``(B, H, W, 2)`` as ``(x, y)`` in image pixels.
    """
    h, w = grid
    as_box = dict(dtype=box.dtype, device=box.device)
    # Offsets of the patch centres from the box centre, as fractions of the box side.
    fx = (2 * torch.arange(w, **as_box) + 1 - w) / (2 * w)
    fy = (2 * torch.arange(h, **as_box) + 1 - h) / (2 * h)
    x = fx[None, None, :] * box[:, None, None, 2]
    y = fy[None, :, None] * box[:, None, None, 3]
    offsets = torch.stack(torch.broadcast_tensors(x, y), dim=-1)
    return box[:, None, None, :2] + _turn(offsets, angle)


def _inside(points: Tensor, box: Tensor, angle: Tensor | None = None) -> Tensor:
    """Overlap map of Eq. (3): +1 where a point lies in the closed (turned) box, else -1.

    ``points`` ``(B, H, W, 2)``, ``box`` ``(B, 4)``, ``angle`` ``(B,)`` -> ``(B, H, W)``.
    """
    half = box[:, None, None, 2:] / 2
    local = _turn(points - box[:, None, None, :2], angle, inverse=True)
    inside = (local.abs() <= half).all(dim=-1)
    return inside.to(points.dtype) * 2 - 1


def _scaled_offsets(box_right: Tensor, box_left: Tensor, grid: tuple[int, int], tau: float,
                    angles: Tensor | None = None):
    """The sigmoid arguments of Eq. (2), and the two hands' position maps.

    Returns ``(z_r2l, z_l2r, c_right, c_left)``, each ``(B, H, W, 2)``:
    ``z_r2l = tau (C_R - C_L) / s_R`` and ``z_l2r = tau (C_L - C_R) / s_L``, the offsets
    in each hand's own crop axes when ``angles`` `(B, 2)` (right, left) are given.
    """
    a_right, a_left = (None, None) if angles is None else angles.unbind(-1)
    c_right = patch_centres(box_right, grid, a_right)
    c_left = patch_centres(box_left, grid, a_left)
    z_r2l = tau * _turn(c_right - c_left, a_right, inverse=True) / box_right[:, None, None, 2:]
    z_l2r = tau * _turn(c_left - c_right, a_left, inverse=True) / box_left[:, None, None, 2:]
    return z_r2l, z_l2r, c_right, c_left


def relation_maps(
    box_right: Tensor,
    box_left: Tensor,
    grid: tuple[int, int],
    tau: float = DEFAULT_TAU,
    angles: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Relative distance maps (Eq. 2) and overlap maps (Eq. 3) of both hands, image order.

    ``d_r2l = sigmoid(tau (C_R - C_L) / s_R)`` with ``s_R`` the right box's ``(sx, sy)``;
    ``d_l2r = sigmoid(tau (C_L - C_R) / s_L)`` with the left box's. ``o_r2l`` is +1 where
    the centre of the right hand's patch lies inside the left box (edges included), else -1;
    ``o_l2r`` likewise for the left hand's patches and the right box. Both hands' maps are
    in image orientation (column 0 = the box's left side); the left crop's mirror is applied
    by :func:`relation_inputs`.

    Args:
        box_right, box_left: ``(B, 4)`` as ``[cx, cy, sx, sy]`` in image pixels.
        grid: ``(H, W)`` token grid.
        tau: Eq. (2)'s tau.
        angles: optional ``(B, 2)`` crop angles (right, left), radians.

    Returns:
        ``(d_r2l, d_l2r, o_r2l, o_l2r)``: ``(B, H, W, 2)``, ``(B, H, W, 2)``, ``(B, H, W)``,
        ``(B, H, W)``.
    """
    z_r2l, z_l2r, c_right, c_left = _scaled_offsets(box_right, box_left, grid, tau, angles)
    a_right, a_left = (None, None) if angles is None else angles.unbind(-1)
    return (z_r2l.sigmoid(), z_l2r.sigmoid(), _inside(c_right, box_left, a_left),
            _inside(c_left, box_right, a_right))


def relation_inputs(
    box_right: Tensor,
    box_left: Tensor,
    grid: tuple[int, int],
    tau: float = DEFAULT_TAU,
    mirror_left: bool = True,
    angles: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The 5-channel MLP inputs of Eq. (4), each in its hand's token order.

    Right hand: ``D_R2L + D_L2R + O_R2L`` (channels ``[dx, dy, dx, dy, o]``). Left hand:
    ``D_L2R + D_R2L + O_L2R``.

    The left-crop mirror: the network mirrors the left crop horizontally so the left hand
    looks like a right hand, so left token column ``j`` sees original patch column
    ``W - 1 - j``, and x points the other way. With ``mirror_left`` the left hand's input
    is mirrored the same way, so each token meets the relation of its own patch:

    - the whole 5-channel map is reversed along W (column ``j`` <- column ``W - 1 - j``);
    - the x channels of both D_L2R and D_R2L (channels 0 and 2) are computed as
      ``sigmoid(-tau dx / s)`` (= ``1 - d``): the sign of every x offset is flipped before
      the sigmoid (computed that way rather than as ``1 - d`` so saturated values keep
      their precision);
    - y channels and O are only reordered (y is not mirrored; inside-ness does not change).

    The result is exactly the right-hand input of the mirrored image (``x -> W_img - x``)
    in which the mirrored left hand is the right hand and the mirrored right hand the left
    one: a left hand is described to the shared MLP as the right hand it was made to look
    like. Without ``mirror_left`` the left input is in image order, for unmirrored crops.

    Args:
        box_right, box_left: ``(B, 4)`` as ``[cx, cy, sx, sy]`` in image pixels.
        grid: ``(H, W)`` token grid.
        tau: Eq. (2)'s tau.
        mirror_left: whether the left hand's tokens come from a mirrored crop.
        angles: optional ``(B, 2)`` crop angles (right, left), radians; the offsets are
            then in each hand's own crop axes, which the mirror flips as above.

    Returns:
        ``(input_right, input_left)``, each ``(B, H, W, 5)``.
    """
    z_r2l, z_l2r, c_right, c_left = _scaled_offsets(box_right, box_left, grid, tau, angles)
    a_right, a_left = (None, None) if angles is None else angles.unbind(-1)
    o_r2l, o_l2r = _inside(c_right, box_left, a_left), _inside(c_left, box_right, a_right)
    input_right = torch.cat([z_r2l.sigmoid(), z_l2r.sigmoid(), o_r2l[..., None]], dim=-1)
    if mirror_left:
        flip_x = torch.tensor([-1.0, 1.0], dtype=z_l2r.dtype, device=z_l2r.device)
        z_l2r, z_r2l = z_l2r * flip_x, z_r2l * flip_x
    input_left = torch.cat([z_l2r.sigmoid(), z_r2l.sigmoid(), o_l2r[..., None]], dim=-1)
    if mirror_left:
        input_left = input_left.flip(dims=[2])
    return input_right, input_left


def far_away_box(
    box: Tensor,
    missing: Literal["left", "right"],
    distance: float = FAR_AWAY_DISTANCE,
    angle: Tensor | None = None,
) -> Tensor:
    """The box given to a missing hand (section 4.5: "far away bounding boxes").

    The present hand's box moved ``distance`` box sizes along both axes, same scale. With
    the same scale every patch pair of Eq. (2) is offset by exactly the move, so all four
    distance channels sit at ``sigmoid(+-tau distance)`` (0 or 1 to within 1e-6 for
    ``tau distance >= 14``), and no patch centre of either box lies in the other, so both
    overlap maps are -1 everywhere: the relation says "no other hand nearby" on both axes,
    a value no pair of nearby hands produces.

    Direction: down (+y) and, in the right-hand frame, to the right (+x). For a missing
    left hand that is image +x; for a missing right hand (the present left hand's frame is
    the mirrored crop) image -x. This makes a lone left hand, with ``mirror_left``, receive
    exactly the relation input of a lone right hand, so the shared MLP sees one "single
    hand" code whichever hand is present (section 4.5 turns one hand into the other by
    flipping the image).

    Args:
        box: ``(B, 4)`` present hand's box ``[cx, cy, sx, sy]`` in image pixels.
        missing: which hand the returned box stands for.
        distance: the move along each axis, in box sizes (``sx`` along x, ``sy`` along y).
        angle: optional ``(B,)`` angle of the present hand's crop: the move is along its
            crop axes, and the stand-in box is turned the same way (give it that angle).

    Returns:
        ``(B, 4)`` box for the missing hand.
    """
    if missing not in ("left", "right"):
        raise ValueError(f"missing must be 'left' or 'right', got {missing!r}")
    sign_x = 1.0 if missing == "left" else -1.0
    direction = torch.tensor([sign_x, 1.0], dtype=box.dtype, device=box.device)
    centre = box[:, :2] + _turn(distance * direction * box[:, 2:], angle)
    return torch.cat([centre, box[:, 2:]], dim=-1)


class RelationEmbedding(nn.Module):
    """Eq. (4): relation maps embedded by one shared MLP and joined to the ViT tokens.

    ``R_R2L = MLP(D_R2L + D_L2R + O_R2L)`` and ``R_L2R = MLP(D_L2R + D_R2L + O_L2R)``
    (``+`` = channel concatenation) with ONE MLP for both hands, ``Linear(5, hidden) ->
    LayerNorm -> GELU -> Linear(hidden, C)``, as in the authors' released code. Sharing is
    consistent because the left input is mirrored into the right-hand frame (see
    :func:`relation_inputs`).

    Joining the embedding ``R`` to the backbone's output tokens ``F``:

    - ``"add"`` (default, the authors' code): ``F+ = F + R``.
    - ``"concat"`` (the paper's word "concatenating"): ``F+ = Linear(2C, C)([F, R])``, so
      the tokens keep width C for the fusion module.

    Args:
        channels: token width C.
        hidden: MLP hidden width.
        join: ``"add"`` or ``"concat"``.
        tau: Eq. (2)'s tau; None takes :data:`DEFAULT_TAU`.
    """

    def __init__(
        self,
        channels: int,
        hidden: int = 128,
        join: Literal["add", "concat"] = "add",
        tau: float | None = None,
    ):
        super().__init__()
        if join not in ("add", "concat"):
            raise ValueError(f"join must be 'add' or 'concat', got {join!r}")
        self.join = join
        self.tau = DEFAULT_TAU if tau is None else float(tau)
        self.mlp = nn.Sequential(
            nn.Linear(5, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Linear(hidden, channels)
        )
        self.project = nn.Linear(2 * channels, channels) if join == "concat" else None

    def embed(
        self, box_right: Tensor, box_left: Tensor, grid: tuple[int, int], mirror_left: bool = True,
        angles: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``(R_R2L, R_L2R)``, each ``(B, H, W, C)`` in its hand's token order."""
        input_right, input_left = relation_inputs(box_right, box_left, grid, self.tau, mirror_left,
                                                  angles)
        dtype = self.mlp[0].weight.dtype
        return self.mlp(input_right.to(dtype)), self.mlp(input_left.to(dtype))

    def _join(self, tokens: Tensor, relation: Tensor) -> Tensor:
        if self.project is None:
            return tokens + relation
        return self.project(torch.cat([tokens, relation], dim=-1))

    def forward(
        self,
        tokens_right: Tensor,
        tokens_left: Tensor,
        box_right: Tensor,
        box_left: Tensor,
        mirror_left: bool = True,
        angles: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Relation-aware tokens of both hands.

        Args:
            tokens_right, tokens_left: ``(B, H, W, C)`` backbone output tokens; the left
                ones in mirrored column order when ``mirror_left``.
            box_right, box_left: ``(B, 4)`` boxes ``[cx, cy, sx, sy]`` in image pixels (a
                missing hand's from :func:`far_away_box`).
            mirror_left: whether the left crop was mirrored (see :func:`relation_inputs`).
            angles: optional ``(B, 2)`` crop angles (right, left), radians.

        Returns:
            ``(tokens_right_plus, tokens_left_plus)``, each ``(B, H, W, C)``.
        """
        grid = tuple(tokens_right.shape[1:3])
        if tuple(tokens_left.shape[1:3]) != grid:
            raise ValueError(f"token grids differ: {tuple(tokens_right.shape)} vs {tuple(tokens_left.shape)}")
        relation_right, relation_left = self.embed(box_right, box_left, grid, mirror_left, angles)
        return self._join(tokens_right, relation_right), self._join(tokens_left, relation_left)
