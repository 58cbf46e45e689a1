"""Skin that reads as a hand: a palm lighter than the back, nails, flexion creases and
knuckle wrinkles, and mottled, uneven colour, as per-vertex albedo on a once-subdivided
hand mesh (about 6.7k vertices, ~1.5 mm apart: finer than a pixel of a hand crop up to
~130 px long; pores are far below that and appear only as per-vertex jitter).

Everything is laid out from what every MANO-layout model has (rest vertices, joints,
skinning weights, fingertips), so it works on the open hand and on MANO alike:

- palm side: the rest normal against the palm's normal (-y in MANO's rest frame, for
  both hands), and for the fingers the side they flex towards;
- nails: the back of each distal segment's outer 65 %, whose free edge is paler;
- creases: the fingers' palmar creases at the PIP and DIP joints and at the finger base
  (0.4 of the proximal segment), the palm's three main lines (distal and proximal
  transverse, thenar) placed in palm-length / MCP-spread units, and lighter wrinkles over
  the back of the PIP and DIP joints;
- mottling: a sum of random plane waves of 4-30 mm over the rest surface, plus jitter.

The albedo is drawn once per hand per sequence (:func:`skin_albedo`) and rides with the
vertices, so it stays on the skin as the hand moves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import trimesh

from ..hands.open_model import FINGER_JOINTS, FLEXION_AXES

# Palm lines in palm coordinates: (fraction of the palm length from the wrist, fraction
# of the MCP spread from the middle MCP towards the index).
_PALM_LINES = (
    ((0.78, -0.75), (0.80, -0.2), (0.88, 0.3)),  # distal transverse
    ((0.74, 0.68), (0.63, 0.1), (0.58, -0.5)),  # proximal transverse
    ((0.74, 0.68), (0.48, 0.48), (0.25, 0.32), (0.06, 0.18)),  # thenar
)
_PALM_TARGET = np.array([0.93, 0.74, 0.66])  # what palms lighten towards: pinker
_NAIL = np.array([0.95, 0.80, 0.78])
_NAIL_EDGE = np.array([0.97, 0.93, 0.88])


@dataclass(frozen=True)
class SkinLayout:
    """Where a hand's features lie, on its once-subdivided mesh (V' vertices).

    Attributes:
        edges: `(E, 2)` the coarse edges whose midpoints are the new vertices V..V+E-1.
        faces: `(4F, 3)` the fine faces.
        rest: `(V', 3)` rest positions (for the noise).
        palm: `(V',)` 0 on the back .. 1 on the palm side.
        nail: `(V',)` 0..1; nail_edge: `(V',)` 0..1, the free edge.
        crease: `(V',)` 0..1 depth of palmar creases; wrinkle: `(V',)` of dorsal ones.
        tip: `(V',)` 0..1, nearness to a fingertip or knuckle (redder skin).
    """

    edges: np.ndarray
    faces: np.ndarray
    rest: np.ndarray
    palm: np.ndarray
    nail: np.ndarray
    nail_edge: np.ndarray
    crease: np.ndarray
    wrinkle: np.ndarray
    tip: np.ndarray

    def subdivide(self, vertices: np.ndarray) -> np.ndarray:
        """Coarse vertices `(..., V, 3)` -> fine `(..., V', 3)` (edge midpoints appended)."""
        mid = 0.5 * (vertices[..., self.edges[:, 0], :] + vertices[..., self.edges[:, 1], :])
        return np.concatenate([vertices, mid], axis=-2)


def _subdivision(faces: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Edges `(E, 2)` and the 4-to-1 fine faces of a triangle mesh of ``count`` vertices."""
    mesh = trimesh.Trimesh(np.zeros((count, 3)), faces, process=False)
    edges = mesh.edges_unique
    m = mesh.faces_unique_edges + count  # (F, 3): midpoints of edges 01, 12, 20
    a, b, c = faces.T
    fine = np.concatenate([np.stack([a, m[:, 0], m[:, 2]], 1), np.stack([m[:, 0], b, m[:, 1]], 1),
                           np.stack([m[:, 2], m[:, 1], c], 1), m])
    return edges, fine


def _bump(x: np.ndarray, width: float) -> np.ndarray:
    return np.exp(-0.5 * (x / width) ** 2)


def _ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _polyline_distance(p: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Distance of 2D points `(N, 2)` to a polyline `(M, 2)`."""
    best = np.full(len(p), np.inf)
    for a, b in zip(line[:-1], line[1:]):
        t = np.clip(((p - a) @ (b - a)) / ((b - a) @ (b - a)), 0.0, 1.0)
        best = np.minimum(best, np.linalg.norm(p - (a + t[:, None] * (b - a)), axis=1))
    return best


def skin_layout(model) -> SkinLayout:
    """The layout of a :class:`~fourdhands.hands.model.HandModel`'s skin (rest shape)."""
    with torch.no_grad():
        out = model()
    v = out.vertices[0].double().numpy()
    joints = out.joints[0].double().numpy()
    kp = out.keypoints[0].double().numpy()
    faces = model.faces.numpy()
    edges, fine = _subdivision(faces, len(v))
    weights = model.lbs_weights.double().numpy()
    weights = np.concatenate([weights, 0.5 * (weights[edges[:, 0]] + weights[edges[:, 1]])])
    fv = np.concatenate([v, 0.5 * (v[edges[:, 0]] + v[edges[:, 1]])])
    normals = trimesh.Trimesh(fv, fine, process=False).vertex_normals
    mirror = np.array([1.0, -1.0, -1.0]) if model.side == "left" else np.ones(3)
    n = len(fv)
    palm, nail, nail_edge, crease, wrinkle, tip = (np.zeros(n) for _ in range(6))
    palm_side = _ramp(-normals[:, 1], -0.2, 0.5)

    for k, ids in enumerate(FINGER_JOINTS):
        chain = np.vstack([joints[list(ids)], kp[4 + 4 * k]])  # 3 joints and the tip
        axis = FLEXION_AXES[k] * mirror
        share = weights[:, list(ids)].sum(1)  # how much of the vertex this finger moves
        d = _unit(chain[-1] - chain[0])
        palmar = _unit(np.cross(axis, d))
        facing = normals @ palmar  # +1 palmar, -1 dorsal
        arc, seg_t, seg = _finger_arc(fv, chain)
        lengths = np.linalg.norm(np.diff(chain, axis=0), axis=1)
        bounds = np.r_[0.0, np.cumsum(lengths)]
        palm += share * _ramp(facing, -0.2, 0.5)
        distal = (seg == 2) & (seg_t > 0.35)
        nail = np.maximum(nail, share * distal * _ramp(-facing, 0.25, 0.55))
        nail_edge = np.maximum(nail_edge, nail * _ramp(seg_t, 0.9, 0.97) * (seg == 2))
        # palmar creases at the finger base, PIP and DIP; wrinkles over the PIP and DIP
        for at, depth in ((0.4 * lengths[0], 0.7), (bounds[1], 1.0), (bounds[2], 0.8)):
            crease = np.maximum(crease, share * depth * _bump(arc - at, 0.0013) * _ramp(facing, 0.3, 0.7))
        for at in bounds[1:3]:
            wrinkle = np.maximum(wrinkle, share * _bump(arc - at, 0.0025) * _ramp(-facing, 0.2, 0.6))
        tip = np.maximum(tip, share * _bump(np.linalg.norm(fv - chain[-1], axis=1), 0.006))

    # the palm: lighter on its face, with its three lines
    wrist, middle = kp[0], kp[9]
    along = middle - wrist
    spread = kp[5] - kp[17]
    lateral = _unit(spread - (spread @ _unit(along)) * _unit(along))
    rel = fv - middle
    coords = np.stack([1.0 + (rel @ along) / (along @ along), (rel @ lateral) / np.linalg.norm(spread)], 1)
    scale = np.array([np.linalg.norm(along), np.linalg.norm(spread)])
    hand = weights[:, 0]
    palm = np.clip(palm + hand * palm_side, 0.0, 1.0)
    for line in _PALM_LINES:
        dist = _polyline_distance(coords * scale, np.asarray(line) * scale)
        crease = np.maximum(crease, 0.8 * hand * palm_side * _bump(dist, 0.0013))
    return SkinLayout(edges, fine, fv, palm, nail, nail_edge, crease, wrinkle, tip)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _finger_arc(p: np.ndarray, chain: np.ndarray):
    """For points `(N, 3)` and a finger's 4 points `(4, 3)`: arc length of the nearest
    point on the chain `(N,)`, the parameter along its segment `(N,)` and which segment
    (0-2) `(N,)`."""
    best = np.full(len(p), np.inf)
    arc, seg_t, seg = np.zeros(len(p)), np.zeros(len(p)), np.zeros(len(p), np.int64)
    start = 0.0
    for i in range(3):
        a, b = chain[i], chain[i + 1]
        length = np.linalg.norm(b - a)
        t = np.clip(((p - a) @ (b - a)) / (length * length), 0.0, 1.0)
        dist = np.linalg.norm(p - (a + t[:, None] * (b - a)), axis=1)
        closer = dist < best
        best = np.where(closer, dist, best)
        arc = np.where(closer, start + t * length, arc)
        seg_t = np.where(closer, t, seg_t)
        seg = np.where(closer, i, seg)
        start += length
    return arc, seg_t, seg


def _waves(rng: np.random.Generator, points: np.ndarray, count: int, wavelength: tuple[float, float]) -> np.ndarray:
    """A sum of ``count`` random plane waves over ``points (N, 3)``, scaled to unit std."""
    k = rng.normal(size=(count, 3))
    k *= (2 * np.pi / rng.uniform(*wavelength, count) / np.linalg.norm(k, axis=1))[:, None]
    field = np.sin(points @ k.T + rng.uniform(0, 2 * np.pi, count)).sum(1)
    return field / max(field.std(), 1e-9)


def skin_albedo(layout: SkinLayout, tone: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-vertex albedo `(V', 3)` in [0, 1] of a hand whose back has skin ``tone (3,)``.

    Darker skin has a relatively lighter palm (more of the palm target is mixed in)."""
    tone = np.asarray(tone, float)
    darkness = float(np.clip(1.0 - tone.mean() / 0.87, 0.0, 1.0))
    mix = (0.3 + 0.4 * darkness) * layout.palm[:, None]
    lighter = np.clip(0.6 * tone + 0.4 * _PALM_TARGET + 0.06, 0.0, 1.0)
    color = tone * (1 - mix) + lighter * mix
    redness = np.array([1.04, 0.94, 0.92])
    color *= 1 + (redness - 1) * (0.6 * layout.tip + 0.5 * layout.wrinkle)[:, None]
    color *= (1 - 0.35 * layout.crease - 0.15 * layout.wrinkle)[:, None]
    nail = 0.5 * tone + 0.5 * _NAIL
    color = color * (1 - layout.nail[:, None]) + nail * layout.nail[:, None]
    color = color * (1 - layout.nail_edge[:, None]) + _NAIL_EDGE * layout.nail_edge[:, None]
    mottle = _waves(rng, layout.rest, 12, (0.004, 0.03))
    blotch = _waves(rng, layout.rest, 6, (0.01, 0.05))
    skin = 1.0 - layout.nail
    color *= (1 + skin * (0.03 * mottle + rng.normal(0.0, 0.015, len(mottle))))[:, None]
    color *= 1 + (redness - 1)[None] * (skin * 0.35 * np.clip(blotch, 0.0, None))[:, None]
    return np.clip(color, 0.0, 1.0)
