"""The open hand model: a MANO-compatible hand built by this package's own code.

MANO cannot ship (its license is gated), so everything in fourdhands runs and is tested
against this model, and loads the official files when a user supplies them. The model has
MANO's parameterisation and MANO's keys (see :func:`build_open_hand`):

- 16 joints in MANO's kinematic tree and order (wrist, index1-3, middle1-3, pinky1-3,
  ring1-3, thumb1-3) and 5 fingertip vertices; 45 + 3 pose values, 10 shape values;
- the same rest frame as MANO's right hand: fingers point along -x, the index finger
  lies at +z and the pinky at -z, the palm faces -y, and the wrist sits near MANO's
  (0.096, 0.006, 0.006) m. Because every joint's rest frame is the identity (as in MANO),
  the same pose vector means the same articulation: finger flexion is a positive rotation
  about +z, spreading a rotation about y, for the right hand;
- a watertight skin: the zero level set of a smooth signed distance field (palm slab,
  tapered finger segments, thenar pad, wrist stump), extracted by marching cubes,
  smoothed and projected back onto the field;
- smooth linear-blend-skinning weights from each vertex's position along its finger,
  so that a joint's rotation moves only the part distal to it, blended over a short
  band around the joint;
- a joint regressor that reproduces the designed joints exactly from the rest vertices
  and follows the surface when the shape changes;
- 10 shape directions with a meaning each (see ``SHAPE_DIRECTIONS``), scaled so that
  beta = +-1 is roughly one standard deviation of adult hands;
- no pose-corrective blend shapes (``posedirs`` is zero): plain linear blend skinning;
- a left hand that is the exact mirror (x -> -x) of the right.

Everything is deterministic: the same code gives the same arrays, bit for bit.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import fast_simplification
import mcubes
import numpy as np
import trimesh

from . import anthropometry
from .mirror import mirror_model_data

#: What each of the 10 shape directions changes, in order; +1 is "more of it".
SHAPE_DIRECTIONS = (
    "overall size (+6 %)",
    "finger length, all fingers (+6 %)",
    "palm length (+6 %)",
    "palm width (+6 %)",
    "thickness of the whole hand (+1.2 mm of flesh)",
    "thumb length (+7 %)",
    "index longer and ring shorter (2D:4D ratio, +-4 %)",
    "pinky length (+8 %)",
    "finger girth (+0.8 mm of finger flesh)",
    "palm thickness (+1.5 mm)",
)

# Rest-pose design of the right hand, in metres, in a wrist-centred frame with MANO's axes
# (fingers along -x, index at +z, palm facing -y). Segment lengths, palm length, knuckle
# arc and palm breadth come from published anthropometry (:mod:`.anthropometry`).
_WRIST_OFFSET = np.array([0.096, 0.006, 0.006])  # near MANO's wrist, so transl means the same
_PALM_LENGTH = anthropometry.palm_length()


@dataclass(frozen=True)
class _Finger:
    mcp: tuple[float, float, float]  # base joint (MCP; CMC for the thumb)
    direction: tuple[float, float, float]  # rest direction of the finger
    lengths: tuple[float, float, float]  # base->2nd joint, 2nd->3rd, 3rd->surface tip
    radii: tuple[float, float, float, float]  # flesh radius at the three joints and the tip


def _unit(d) -> np.ndarray:
    d = np.asarray(d, float)
    return d / np.linalg.norm(d)


# The radii below are designed for an index PIP radius of 9.1 mm; all are scaled so that the
# index finger's breadth across its PIP joint is the cited one.
_GIRTH_SCALE = anthropometry.INDEX_PIP_BREADTH / 2 / 0.0091


def _girth(*radii: float) -> tuple[float, ...]:
    """Designed flesh radii (m), scaled to the cited finger girth."""
    return tuple(r * _GIRTH_SCALE for r in radii)


def _long_fingers() -> list[_Finger]:
    """Index to pinky: MCPs across the palm (y, z chosen for the palm breadth), set back
    from the middle one's so that the fingertips, extended and adducted (along -x), fall
    short of the middle tip by the measured amounts; the middle MCP lies one palm length
    from the wrist. At rest the fingers splay a little from there."""
    lengths = anthropometry.finger_lengths()
    names = ("index", "middle", "ring", "pinky")
    directions = [(-1.0, 0.0, 0.05), (-1.0, 0.0, -0.08), (-1.0, 0.0, -0.22), (-1.0, 0.0, -0.45)]
    yz = [(0.0, 0.027), (0.0005, 0.006), (0.0, -0.015), (-0.002, -0.036)]
    radii = [_girth(0.0101, 0.0091, 0.0081, 0.0072), _girth(0.0103, 0.0093, 0.0083, 0.0073),
             _girth(0.0097, 0.0088, 0.0078, 0.0069), _girth(0.0087, 0.0079, 0.0071, 0.0063)]
    y, z = yz[1]
    middle_mcp = np.array([-np.sqrt(_PALM_LENGTH**2 - y * y - z * z), y, z])
    middle_tip_x = middle_mcp[0] - lengths[2].sum()
    out = []
    for k, name in enumerate(names):
        mcp = (middle_tip_x + anthropometry.TIP_SHORTFALL[name] + lengths[k + 1].sum(), *yz[k])
        out.append(_Finger(tuple(float(c) for c in mcp), directions[k], tuple(lengths[k + 1]), radii[k]))
    return out


# Order: thumb, index, middle, ring, pinky (the order of the 21-keypoint layout).
_FINGERS = (
    _Finger((-0.020, -0.011, 0.025), (-0.62, -0.18, 0.76), tuple(anthropometry.finger_lengths()[0]),
            _girth(0.0150, 0.0118, 0.0102, 0.0090)),
    *_long_fingers(),
)

# MANO joint index of each finger's three joints, fingers in the order of _FINGERS.
_FINGER_JOINTS = ((13, 14, 15), (1, 2, 3), (4, 5, 6), (10, 11, 12), (7, 8, 9))
_PARENTS = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14])

# Palm: a planar polygon (x, z) at y = 0, thickened by a radius that grows towards the wrist.
_PALM_POLYGON = np.array([
    [0.012, 0.013], [-0.010, 0.016], [-0.040, 0.022], [-0.072, 0.026], [-0.086, 0.024],
    [-0.088, 0.010], [-0.087, -0.006], [-0.083, -0.020], [-0.076, -0.032], [-0.062, -0.036],
    [-0.035, -0.032], [-0.012, -0.023], [0.012, -0.016],
])
_PALM_RADIUS_MCP, _PALM_RADIUS_WRIST = 0.0115, 0.0145
_GRID_STEP = 0.0028  # marching-cubes voxel (m): fine enough for the thinnest fingertip
_KEEP_FACES = 0.2  # share of the marching-cubes faces kept by decimation: ~1.6k vertices


def _finger_points(f: _Finger) -> np.ndarray:
    """The finger's 3 joints and its tip sphere centre, `(4, 3)`."""
    d = np.asarray(f.direction, float)
    d /= np.linalg.norm(d)
    p0 = np.asarray(f.mcp, float)
    p1 = p0 + f.lengths[0] * d
    p2 = p1 + f.lengths[1] * d
    tip_centre = p2 + (f.lengths[2] - f.radii[3]) * d
    return np.stack([p0, p1, p2, tip_centre])


def _skeleton() -> tuple[np.ndarray, np.ndarray]:
    """Designed joints `(16, 3)` in MANO order and tip points `(5, 3)` on the surface."""
    joints = np.zeros((16, 3))
    tips = np.zeros((5, 3))
    for f, ids in zip(_FINGERS, _FINGER_JOINTS):
        pts = _finger_points(f)
        joints[list(ids)] = pts[:3]
        d = pts[3] - pts[2]
        tips_dir = d / np.linalg.norm(d)
        tips[_FINGERS.index(f)] = pts[3] + f.radii[3] * tips_dir
    return joints, tips


# ---------------------------------------------------------------- signed distance field

def _smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum: a union that rounds the seam over a band of width k."""
    h = np.clip(k - np.abs(a - b), 0.0, None) / k
    return np.minimum(a, b) - h * h * k * 0.25


def _sd_round_cone(p: np.ndarray, a: np.ndarray, b: np.ndarray, ra: float, rb: float):
    """Distance-like field of a segment a->b whose radius goes linearly ra->rb, `(N,)`."""
    ab = b - a
    t = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1) - (ra + t * (rb - ra))


def _sd_polygon_2d(q: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Signed distance of 2D points `(N, 2)` to a closed polygon `(M, 2)` (negative inside)."""
    d2 = np.full(len(q), np.inf)
    inside = np.zeros(len(q), bool)
    for i in range(len(poly)):
        a, b = poly[i], poly[i - 1]
        e, w = b - a, q - a
        t = np.clip((w @ e) / (e @ e), 0.0, 1.0)
        d2 = np.minimum(d2, ((w - t[:, None] * e) ** 2).sum(1))
        # even-odd rule, crossing test on the edge's z span
        c1, c2 = q[:, 1] >= a[1], q[:, 1] < b[1]
        c3 = e[0] * w[:, 1] > e[1] * w[:, 0]
        flip = (c1 & c2 & c3) | (~c1 & ~c2 & ~c3)
        inside ^= flip
    return np.where(inside, -1.0, 1.0) * np.sqrt(d2)


def _palm_radius(x: np.ndarray) -> np.ndarray:
    t = np.clip((x - (-0.088)) / (0.0 - (-0.088)), 0.0, 1.0)
    return _PALM_RADIUS_MCP + t * (_PALM_RADIUS_WRIST - _PALM_RADIUS_MCP)


def _hand_sdf(p: np.ndarray) -> np.ndarray:
    """The right hand's field at points `(N, 3)` (wrist frame): negative inside."""
    s = _sd_polygon_2d(p[:, [0, 2]], _PALM_POLYGON)
    palm = np.sqrt(np.clip(s, 0.0, None) ** 2 + p[:, 1] ** 2) - _palm_radius(p[:, 0])
    d = palm
    # thenar pad: from the wrist's thumb side to the thumb's base joint
    thumb = _finger_points(_FINGERS[0])
    d = _smin(d, _sd_round_cone(p, np.array([-0.004, -0.006, 0.008]), thumb[0], 0.0150, 0.0150), 0.012)
    for f, blend in zip(_FINGERS, (0.016, 0.007, 0.007, 0.007, 0.007)):  # a fleshy thumb web
        pts = _finger_points(f)
        finger = np.minimum.reduce([
            _sd_round_cone(p, pts[i], pts[i + 1], f.radii[i], f.radii[i + 1]) for i in range(3)
        ])
        d = _smin(d, finger, blend)
    return d


def _sdf_gradient(p: np.ndarray, h: float = 1e-5) -> np.ndarray:
    g = np.stack([
        _hand_sdf(p + h * e) - _hand_sdf(p - h * e) for e in np.eye(3)
    ], axis=1) / (2 * h)
    return g / np.clip(np.linalg.norm(g, axis=1, keepdims=True), 1e-12, None)


def _project_to_surface(v: np.ndarray, steps: int = 3) -> np.ndarray:
    for _ in range(steps):
        v = v - _hand_sdf(v)[:, None] * _sdf_gradient(v)
    return v


def _relax(v: np.ndarray, faces: np.ndarray, neighbours, iterations: int = 8) -> np.ndarray:
    """Even out the decimated triangles: move each vertex towards its neighbours' mean
    within the tangent plane, then back onto the surface (keeps the shape, fixes slivers)."""
    counts = np.array([len(n) for n in neighbours])
    rows = np.repeat(np.arange(len(v)), counts)
    cols = np.concatenate([np.asarray(n, dtype=np.int64) for n in neighbours])
    for _ in range(iterations):
        mean = np.zeros_like(v)
        np.add.at(mean, rows, v[cols])
        step = mean / counts[:, None] - v
        normal = _sdf_gradient(v)
        step -= (step * normal).sum(1, keepdims=True) * normal
        v = _project_to_surface(v + 0.5 * step)
    return v


def _skin_mesh() -> tuple[np.ndarray, np.ndarray]:
    """Watertight skin of the right hand (wrist frame): vertices `(V, 3)`, faces `(F, 3)`."""
    lo = np.array([-0.215, -0.045, -0.085])
    hi = np.array([0.055, 0.040, 0.125])
    n = np.ceil((hi - lo) / _GRID_STEP).astype(int) + 1
    axes = [lo[i] + _GRID_STEP * np.arange(n[i]) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    field = _hand_sdf(grid).reshape(n)
    verts, faces = mcubes.marching_cubes(field, 0.0)
    verts = lo + verts * _GRID_STEP
    verts, faces = fast_simplification.simplify(
        verts.astype(np.float32), faces.astype(np.int32), target_reduction=1.0 - _KEEP_FACES)
    mesh = trimesh.Trimesh(verts.astype(float), faces.astype(np.int64), process=True)
    v = _relax(np.asarray(mesh.vertices, float), np.asarray(mesh.faces), mesh.vertex_neighbors)
    faces = np.asarray(mesh.faces, np.int64)
    # marching cubes orients faces for a field that is positive inside; ours is negative inside
    if trimesh.Trimesh(v, faces, process=False).volume < 0:
        faces = faces[:, ::-1].copy()
    return v, faces


# ---------------------------------------------------------------- per-vertex anatomy

def _finger_field(v: np.ndarray, f: _Finger):
    """Arc length along the finger from its base joint `(V,)` (negative before the base),
    and the distance to the finger's flesh `(V,)` (about 0 on its skin)."""
    pts = _finger_points(f)
    best = np.full(len(v), np.inf)
    arc = np.zeros(len(v))
    start = 0.0
    for i in range(3):
        a, b = pts[i], pts[i + 1]
        ab = b - a
        length = np.linalg.norm(ab)
        t_raw = ((v - a) @ ab) / (length * length)
        t = np.clip(t_raw, 0.0, 1.0)
        dist = np.linalg.norm(v - (a + t[:, None] * ab), axis=1) - (f.radii[i] + t * (f.radii[i + 1] - f.radii[i]))
        # before the base, the arc length continues backwards along the first segment
        s = start + (t_raw if i == 0 else t) * length
        closer = dist < best
        best = np.where(closer, dist, best)
        arc = np.where(closer, np.minimum(s, start + length) if i < 2 else s, arc)
        start += length
    return arc, best


def _anatomy(v: np.ndarray):
    """Memberships `(V, 6)` (palm, thumb, index, middle, ring, pinky; rows sum to 1) and
    arc lengths along each finger `(V, 5)`.

    A vertex belongs to the parts whose flesh it is within 2.5 mm of the nearest part's:
    memberships are exactly zero beyond that, so moving one finger never drags another
    finger's skin."""
    s = _sd_polygon_2d(v[:, [0, 2]], _PALM_POLYGON)
    palm = np.sqrt(np.clip(s, 0.0, None) ** 2 + v[:, 1] ** 2) - _palm_radius(v[:, 0])
    thumb = _finger_points(_FINGERS[0])
    thenar = _sd_round_cone(v, np.array([-0.004, -0.006, 0.008]), thumb[0], 0.0150, 0.0150)
    dist = [np.minimum(palm, thenar)]
    arcs = []
    for f in _FINGERS:
        arc, d = _finger_field(v, f)
        # a finger's flesh before its base joint is palm, not finger
        dist.append(np.where(arc < 0.0, d + 0.5 * np.abs(arc), d))
        arcs.append(arc)
    dist = np.stack(dist, 1)
    band = 0.0025
    m = np.clip(1.0 - (dist - dist.min(1, keepdims=True)) / band, 0.0, None) ** 2
    return m / m.sum(1, keepdims=True), np.stack(arcs, 1)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _skinning_weights(v: np.ndarray, membership: np.ndarray, arcs: np.ndarray) -> np.ndarray:
    """LBS weights `(V, 16)`: palm flesh follows the wrist; finger flesh follows the joint
    proximal to it, blended across each joint over a band of +-0.9 of its flesh radius."""
    w = np.zeros((len(v), 16))
    w[:, 0] += membership[:, 0]
    for k, (f, ids) in enumerate(zip(_FINGERS, _FINGER_JOINTS)):
        s = arcs[:, k]
        bounds = np.cumsum([0.0, f.lengths[0], f.lengths[1]])
        # share of the flesh beyond each joint: 1 well past it, 0 well before it
        past = [_smoothstep((s - b + 0.9 * r) / (1.8 * r)) for b, r in zip(bounds, f.radii[:3])]
        chain = [1.0 - past[0], past[0] - past[1], past[1] - past[2], past[2]]
        for joint, share in zip((0,) + ids, chain):
            w[:, joint] += membership[:, k + 1] * share
    return w / w.sum(1, keepdims=True)


def _joint_regressor(v: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """`(16, V)`: each joint an affine combination of the skin around it (rows sum to 1)
    that reproduces the designed joint exactly; the least-squares-smallest such weights
    beside the uniform average, so the joint rides along with local shape changes."""
    reg = np.zeros((16, len(v)))
    radius = np.full(16, 0.0)
    radius[0] = 0.022
    for f, ids in zip(_FINGERS, _FINGER_JOINTS):
        radius[list(ids)] = 1.7 * np.asarray(f.radii[:3])
    for j in range(16):
        near = np.nonzero(np.linalg.norm(v - joints[j], axis=1) < radius[j])[0]
        a = np.vstack([np.ones(len(near)), v[near].T])  # (4, n)
        u = np.full(len(near), 1.0 / len(near))
        target = np.concatenate([[1.0], joints[j]])
        reg[j, near] = u + a.T @ np.linalg.solve(a @ a.T, target - a @ u)
    return reg


def _ramp(s: np.ndarray, h: float = 0.003) -> np.ndarray:
    """A smooth max(s, 0) (softplus of width h): lengthening starts at the base joint."""
    return h * np.logaddexp(0.0, s / h)


def _shape_directions(v: np.ndarray, membership: np.ndarray, arcs: np.ndarray) -> np.ndarray:
    """`(V, 3, 10)` displacement fields, one per entry of SHAPE_DIRECTIONS."""
    normal = _sdf_gradient(v)
    dirs = [np.asarray(f.direction) / np.linalg.norm(f.direction) for f in _FINGERS]
    bases = np.array([_finger_points(f)[0] for f in _FINGERS])
    palm, fingers = membership[:, :1], membership[:, 1:]

    def attached(field):
        """Palm flesh moves by field(vertex); a finger moves rigidly with field(its base)."""
        return palm * field(v) + fingers @ field(bases)

    def lengthen(k, fraction):
        return fingers[:, k:k + 1] * fraction * _ramp(arcs[:, k])[:, None] * dirs[k]

    palm_length = _PALM_LENGTH
    out = [
        0.06 * v,
        sum(lengthen(k, 0.06) for k in (1, 2, 3, 4)),
        attached(lambda p: 0.06 * palm_length * np.clip(-p[:, :1] / palm_length, 0.0, 1.0)
                 * np.array([-1.0, 0.0, 0.0])),
        attached(lambda p: 0.06 * (p[:, 2:3] + 0.004) * np.array([0.0, 0.0, 1.0])),
        0.0012 * normal,
        lengthen(0, 0.07),
        lengthen(1, 0.04) - lengthen(3, 0.04),
        lengthen(4, 0.08),
        0.0008 * fingers.sum(1, keepdims=True) * normal,
        palm * 0.0015 * np.tanh(v[:, 1:2] / 0.004) * np.array([0.0, 1.0, 0.0]),
    ]
    return np.stack(out, axis=2)


def _flexion_axis(k: int) -> np.ndarray:
    d = np.asarray(_FINGERS[k].direction, float)
    axis = np.cross(d / np.linalg.norm(d), [0.0, -1.0, 0.0])
    return axis / np.linalg.norm(axis)


#: Right hand, rest frame: the unit axis about which each finger (thumb, index, middle,
#: ring, pinky) flexes towards the palm, `(5, 3)`. For the four fingers it is about +z,
#: as in MANO; the left hand's axes are these mirrored (x kept, y and z negated).
FLEXION_AXES = np.stack([_flexion_axis(k) for k in range(5)])
FLEXION_AXES.setflags(write=False)

#: MANO joint indices (1-15 in the 16-joint order) of each finger's three joints, fingers
#: in the order thumb, index, middle, ring, pinky.
FINGER_JOINTS = _FINGER_JOINTS


def _hands_mean() -> np.ndarray:
    """The relaxed mean pose `(45,)` (a slight curl), added when flat_hand_mean is False."""
    pose = np.zeros((15, 3))
    for k, ids in enumerate(_FINGER_JOINTS):
        bend = (0.10, 0.10, 0.05) if k == 0 else (0.15, 0.25, 0.12)
        for joint, angle in zip(ids, bend):
            pose[joint - 1] = angle * FLEXION_AXES[k]
    return pose.reshape(45)


@functools.lru_cache(maxsize=1)
def _right_hand() -> dict:
    v, faces = _skin_mesh()
    joints, tips = _skeleton()
    tip_ids = np.array([np.argmin(np.linalg.norm(v - t, axis=1)) for t in tips])
    # The decimated skin has a vertex every ~4 mm: pin the nearest one onto each designed
    # tip (which lies on the skin), so that the fingertip keypoints end the fingers on
    # their axes instead of up to 6 mm off to one side.
    v[tip_ids] = tips
    membership, arcs = _anatomy(v)
    data = {
        "v_template": v + _WRIST_OFFSET,
        "shapedirs": _shape_directions(v, membership, arcs),
        "posedirs": np.zeros((len(v), 3, 135)),
        "J_regressor": _joint_regressor(v, joints),
        "weights": _skinning_weights(v, membership, arcs),
        "kintree_table": np.stack([_PARENTS, np.arange(16)]).astype(np.int64),
        "f": faces,
        "hands_mean": _hands_mean(),
        "hands_components": np.eye(45),
        "tip_vertex_ids": tip_ids.astype(np.int64),
    }
    for a in data.values():
        a.setflags(write=False)
    return data


def build_open_hand(side: str) -> dict:
    """The open hand model's arrays, with MANO's keys and layouts.

    Args:
        side: ``"right"`` or ``"left"`` (the left is the exact mirror of the right).

    Returns:
        dict of float64/int64 NumPy arrays: ``v_template (V,3)``, ``shapedirs (V,3,10)``,
        ``posedirs (V,3,135)`` (zeros), ``J_regressor (16,V)``, ``weights (V,16)``,
        ``kintree_table (2,16)`` (root parent -1), ``f (F,3)``, ``hands_mean (45,)``,
        ``hands_components (45,45)`` (identity: there is no PCA basis), and
        ``tip_vertex_ids (5,)`` (thumb, index, middle, ring, pinky tips). V is about 1.5k.
        The arrays are fresh copies, free to modify.
    """
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    right = _right_hand()
    if side == "right":
        return {k: np.array(a, copy=True) for k, a in right.items()}
    return mirror_model_data(right)
