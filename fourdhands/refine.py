"""Clip-level refinement (``fourdhands run --refine``): after the network, one
optimisation over the clip, in windows so that memory stays bounded on long videos.

Variables, per hand and frame where it is present: a turn of the root (axis-angle,
applied on the left of the network's rotation, so on SO(3)), a change of the 15 finger
axis-angles and of the translation; the shape stays the network's. The energy
(:class:`RefineConfig` holds each weight; :mod:`fourdhands.refine_terms` each term):

- ``reprojection``: the projected keypoints against the 2D evidence, the network's own
  keypoints and the detector's landmarks where it has them, robust (Geman-McClure) and
  weighted by confidence;
- ``rotation_prior`` and ``transl_prior``: staying near the network's prediction;
- ``joint_smoothness`` and ``rotation_smoothness``: second differences over time of the
  keypoints and of every joint's rotation (chordal, on SO(3));
- ``penetration``: points of one hand inside the other, by exact inside tests (winding
  numbers) on the closed mesh (the open model's is watertight; MANO's is capped at the
  wrist), pushed out past the plane of the other hand's nearest triangle;
- ``limits``: finger articulation beyond the joint limits.

L-BFGS (:mod:`fourdhands.lbfgs`) minimises it, with the rotation tracks in a basis that
whitens the smoothness quadratic (:func:`smoothness_basis`) and at least a quarter of a
step per frame of the window (:meth:`ClipRefiner._minimise` says why). Before it, a
wrist whose depth is an outlier slides back along its ray (:func:`steady_depths`), and a
push along the camera's depth axis or the hands' own directions parts hands inside each
other (:meth:`ClipRefiner._part`): the minimisation then smooths the push's steps (on the
interacting split Accel_E 6.5 mm/frame^2, against 12.2 with the push only after it). The
push comes again after the minimisation, as the priors pull the hands back together.

:class:`ClipRefiner` streams: windows of ``window`` new frames are optimised with the
last ``context`` frames already written held fixed before them (smoothness across the
seam), and the last ``overlap`` frames are optimised again with the next window. A hand
present in fewer than two frames of a window, and a clip of one frame, are left as the
network gave them; a window whose energy turns non-finite falls back to the network's
results, with a warning naming its frames.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from . import lbfgs
from . import refine_terms as terms
from .geometry.inside import boundary_loops, close_holes, faces_around_vertices, inside_frames, nearest_triangles
from .geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from .hands.contact import push_apart
from .hands.joints import keypoints_from_joints
from .hands.lbs import batch_rigid_transform, pose_blend_shapes, skin_vertices
from .pipeline import SIDES, FrameResult

TERMS = ("reprojection", "rotation_prior", "transl_prior", "joint_smoothness", "rotation_smoothness",
         "penetration", "limits")


@dataclass(frozen=True)
class RefineConfig:
    """Weights (each term is a mean, in the units its docstring names) and the schedule."""

    reprojection: float = 0.05  # per px^2 (robust): a 4.5 px residual costs 1
    robust_px: float = 40.0  # Geman-McClure scale: residuals far beyond it stop pulling (at 12, most of
    # MediaPipe's landmarks on the kitchen clip, 40 px from the network's keypoints on average, did)
    network_weight: float = 0.5  # confidence of the network's own 2D keypoints
    detector_weight: float = 1.0  # times the detector's score, for its landmarks
    rotation_prior: float = 1.0 / 0.05 ** 2  # per rad^2: 0.05 rad (3 deg) costs 1
    transl_prior: float = 1.0  # per (transl_scale m)^2
    transl_scale: float = 0.01
    joint_smoothness: float = 0.05  # per (accel_scale m / frame^2)^2 (see _minimise)
    accel_scale: float = 0.001
    robust_accel: float = 300.0  # accel_scale units: larger jumps are a tracker's, not jitter
    rotation_smoothness: float = 100.0  # per squared chordal change of a frame-to-frame rotation
    penetration: float = 10.0  # per (transl_scale m)^2 of depth (the last push does most of the parting)
    limits: float = 100.0  # per rad^2 beyond the limits
    # before the minimisation, a wrist whose depth is more than depth_ratio times off the
    # median of the present ones within depth_reach frames slides along its ray to that
    # median (steady_depths; None: never): the network puts a mostly hidden hand metres away
    depth_ratio: float | None = 1.5
    depth_reach: int = 5
    window: int = 128  # new frames per optimisation (an evaluation costs nearly the same for 32)
    overlap: int = 16  # of them, optimised again with the next window
    context: int = 2  # frames already final, held fixed before a window
    steps: int = 16  # L-BFGS iterations per round, at least
    steps_per_frame: float = 0.25  # and at least this many per frame of the window: see _minimise
    rounds: int = 1  # rounds of minimisation, each after new inside tests
    # Preconditioning only (any positive values have the same minimum; these make L-BFGS
    # get there in fewer steps): smoothness's curvature over the prior's, per frame,
    # roughly, for the root's turn (every joint's rotation and all keypoints move with it)
    # and for the finger joints (see smoothness_basis)
    precondition_rotation: float = 8.0
    precondition_fingers: float = 1.0
    inside_stride: int = 8  # every k-th vertex is tested (the fingertips always; 4 cost 15 % more, parted no better)
    # share of vertices the push may leave inside the other hand (None: no push). Contact may
    # sink a little: on the interacting split (two rounds, the push after them only) 0.002
    # parted the hands 25x (deepest vertex) but moved MRRPE +1.2 %, 0.01 6.6x and -1.6 %
    part: float | None = 0.01
    part_most: float = 0.15  # metres: the longest such push
    # frames that choose the push's way: on the interacting split and a fresh draw of 24, 3
    # parted the hands more than 4 (0.96 and 0.65 mm against 1.13 and 0.70), for a quarter
    # less probing, MRRPE 86.6 against 86.3 and 75.7 against 80.2 mm; 2 gave MRRPE 91.5
    part_probes: int = 3


@dataclass
class _Hand:
    """One hand over a window: the network's parameters, the 2D evidence, the precomputed
    rest shape, and the variables."""

    side: str
    present: torch.Tensor  # (T,) bool
    free: torch.Tensor  # (T,) bool: present and optimised
    R0: torch.Tensor  # (T, 3, 3) the network's root rotation
    pose0: torch.Tensor  # (T, 45)
    transl0: torch.Tensor  # (T, 3)
    betas: torch.Tensor  # (T, 10)
    joints_rest: torch.Tensor  # (T, 16, 3)
    subset: torch.Tensor  # (N,) vertex ids tested for being inside the other hand (tips first)
    correctives: bool  # the model has pose-corrective blend shapes (MANO; the open model none)
    rest: torch.Tensor  # (T, V, 3) the rest vertices (shaped)
    targets: torch.Tensor  # (2, T, 21, 2) network keypoints, landmarks
    weights: torch.Tensor  # (2, T, 21)
    omega: torch.Tensor  # (T, 3) variables (zero off the free frames)
    delta: torch.Tensor  # (T, 45)
    shift: torch.Tensor  # (T, 3), in units of TRANSL_UNIT (well scaled beside the radians)
    resited: torch.Tensor  # (T,) bool: its depth was an outlier, slid along the ray (steady_depths)


class _NonFinite(Exception):
    """The energy turned non-finite during a minimisation."""


class ClipRefiner:
    """Refines a stream of :class:`~fourdhands.pipeline.FrameResult` (module docstring).

    :meth:`push` a frame's result with its landmarks (side -> ``(landmarks (21, 2) or
    None, score)``); it returns the results now final, in order; :meth:`finish` returns
    the rest. ``report`` sums each term before and after, over the refined frames."""

    def __init__(self, models: dict, config: RefineConfig | None = None):
        self.models, self.config = models, config or RefineConfig()
        self._subsets = {side: _subset(m, self.config.inside_stride) for side, m in models.items()}
        self._closures = {side: boundary_loops(m.faces.cpu().numpy()) for side, m in models.items()}
        self._around = {side: faces_around_vertices(m.faces.cpu(), m.num_vertices) for side, m in models.items()}
        self._new: list[tuple[FrameResult, dict]] = []
        self._done: list[tuple[FrameResult, dict]] = []
        self.report = {"before": dict.fromkeys(TERMS, 0.0), "after": dict.fromkeys(TERMS, 0.0), "windows": 0,
                       "frames": 0, "fallbacks": [], "seconds": 0.0, "notes": [], "depth_outliers": []}

    def push(self, result: FrameResult | None, landmarks: dict) -> list[FrameResult | None]:
        self._new.append((result, landmarks))
        return self._flush(final=False) if len(self._new) >= self.config.window else []

    def finish(self) -> list[FrameResult | None]:
        if len(self._done) + len(self._new) == 1:
            self.report["notes"].append("a clip of one frame: left as the network gave it")
            out, self._new = [r for r, _ in self._new], []
            return out
        return self._flush(final=True) if self._new else []

    def _flush(self, final: bool) -> list[FrameResult | None]:
        c = self.config
        fixed = self._done[-c.context:] if c.context else []
        frames = fixed + self._new
        refined = self._refine(frames, len(fixed))
        keep = 0 if final else min(c.overlap, len(self._new) - 1)
        out = refined[len(fixed):len(frames) - keep]
        self._done = (self._done + [(r, lm) for r, (_, lm) in zip(out, self._new)])[-max(c.context, 1):]
        self._new = self._new[len(self._new) - keep:]
        return out

    def _refine(self, frames: list, fixed: int) -> list[FrameResult | None]:
        t0 = time.perf_counter()
        results = [r for r, _ in frames]
        hands = {side: _hand(side, frames, fixed, self.models[side], self._subsets[side], self.config)
                 for side in SIDES if side in self.models}
        hands = {s: h for s, h in hands.items() if h is not None}
        if not hands:
            return results
        resited = {results[t].index for h in hands.values() for t in torch.nonzero(h.resited).flatten().tolist()}
        self.report["depth_outliers"] = sorted(set(self.report["depth_outliers"]) | resited)
        K = torch.as_tensor(np.stack([_K(r) for r in results]), dtype=torch.float32)  # once per window
        insides = self._insides(hands)
        before = self._energy(K, hands, insides)[1]
        moved, choice = self._part(hands)
        if moved:  # parted first, so that the minimisation smooths the push's steps
            insides = self._insides(hands)
        finite = True
        for round in range(self.config.rounds):  # the inside tests again between rounds
            if round:
                insides = self._insides(hands)
            finite = self._minimise(K, hands, insides)
            if not finite:
                break
        if finite and self._part(hands, choice)[0]:  # and again, the same way: the priors pull them back
            insides = self._insides(hands)  # the report's inside sets after the push
        after = self._energy(K, hands, insides)[1] if finite else None  # the last round's inside sets
        out = self._results(results, hands) if finite else None
        return self._account(results, frames, fixed, before, after, out, time.perf_counter() - t0)

    def _minimise(self, K: torch.Tensor, hands: dict, insides) -> bool:
        """L-BFGS on the variables of the free frames (the energy is smooth once the inside
        sets are fixed); False when the energy turned non-finite.

        Smoothness chains the frames, and a quasi-Newton step carries a change about one
        frame along the chain. Two things answer that: each rotation track runs through
        :func:`smoothness_basis` (the variables are ``z``, the track ``start + A z``), and
        a longer window gets more steps (``config.steps_per_frame``). Converged, the
        energy must itself balance jitter against jumps: at ``joint_smoothness`` 3 (the
        weight that suited 24 unconverged steps) a converged window removed a lost hand's
        jump by moving the hand 40 cm, which at 0.05 costs more than the jump (at 0.1, with
        this module's L-BFGS, the occluded split's fingers still bent across jumps: MPJPE-w
        +2.1 mm over 12 sequences)."""
        c = self.config
        # the translation is left as it is: preconditioned like the rotations (ratio 40, 8),
        # every figure got worse, as the network's depth jitter along the rays dominates it
        ratios = {"omega": c.precondition_rotation, "delta": c.precondition_fingers, "shift": 0.0}
        tracks = [(h, name, getattr(h, name).detach(), smoothness_basis(h.free, h.present, ratio))
                  for h in hands.values() for name, ratio in ratios.items()]  # (hand, name, start, A)
        shapes = [(A.shape[1], start.shape[1]) for _, _, start, A in tracks]
        sizes = [rows * cols for rows, cols in shapes]

        def place(x: torch.Tensor) -> list[torch.Tensor]:
            """The tracks at the variables ``x`` `(sum(sizes),)`; the variables' tensors."""
            zs = [part.view(shape).requires_grad_() for part, shape in zip(torch.split(x, sizes), shapes)]
            for (h, name, start, A), z in zip(tracks, zs):
                setattr(h, name, start + A @ z)
            return zs

        def energy_and_gradient(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            zs = place(x)
            loss = self._energy(K, hands, insides)[0]
            if not torch.isfinite(loss):
                raise _NonFinite
            return loss.detach(), torch.cat([g.flatten() for g in torch.autograd.grad(loss, zs)])

        steps = max(c.steps, math.ceil(c.steps_per_frame * len(tracks[0][0].present)))
        try:
            x = lbfgs.minimise(energy_and_gradient, torch.zeros(sum(sizes)), steps, math.ceil(1.25 * steps))
        except _NonFinite:
            return False
        with torch.no_grad():  # the tracks at the result, outside any graph
            place(x)
        return bool(torch.isfinite(x).all())

    @torch.no_grad()
    def _part(self, hands: dict, choice: int | None = None) -> tuple[bool, int | None]:
        """The push against interpenetration: on the free frames where both hands are,
        the shortest push that leaves at most ``config.part`` of either hand's vertices
        inside the other (:func:`~fourdhands.hands.contact.push_apart`, exact inside tests on
        the closed meshes), half to each hand. One direction for the window: of the
        camera's depth axis (either way: the 2D stays nearly as it was) and the hands' own
        (as the generator parts them), the one that parts the most probe frames with the
        least push. On the interacting split (12 sequences) the depth axis alone needed
        longer pushes (a hand reaching along the rays is long in depth): MRRPE 91.9 mm
        against 88.8 with every candidate and 87.8 for the network (the push after the
        minimisation only). Whether it moved the hands, and the direction's ``choice``
        (given, it is taken again)."""
        if self.config.part is None or len(hands) < 2:
            return False, choice
        meshes = {side: self._mesh(h) for side, h in hands.items()}
        (right, _, _), (left, _, _) = meshes["right"], meshes["left"]
        touching = ((right.min(1).values <= left.max(1).values) & (left.min(1).values <= right.max(1).values)).all(-1)
        frames = torch.nonzero(hands["right"].free & hands["left"].free & touching).flatten()  # boxes overlap
        if len(frames) < 2:
            return False, choice
        shift, choice = push_apart(np.stack([meshes[s][0][frames].numpy() for s in SIDES], 1),
                                   np.stack([meshes[s][2][frames].numpy() for s in SIDES], 1),
                                   [meshes[s][1].numpy() for s in SIDES], self.config.part, directions=_DEPTH_AXIS,
                                   most=self.config.part_most, choice=choice, probes=self.config.part_probes)
        for k, side in enumerate(SIDES):
            hands[side].shift[frames] += torch.as_tensor(shift[:, k], dtype=torch.float32) / TRANSL_UNIT
        return bool(np.any(shift)), choice

    def _account(self, results, frames, fixed, before, after, out, seconds):
        r = self.report
        r["seconds"] += seconds
        if out is None or not all(np.isfinite(h.vertices).all() for x in out if x for h in x.hands.values()):
            names = [i for i, (res, _) in enumerate(frames[fixed:]) if res is not None]
            r["fallbacks"].append(names)
            print(f"warning: refinement of a window of {len(names)} frames turned non-finite; "
                  "those frames keep the network's results", file=sys.stderr)
            return results
        r["windows"] += 1
        n = len(frames) - fixed
        r["frames"] += n
        for k in TERMS:
            r["before"][k] += before[k] * n
            r["after"][k] += after[k] * n
        return out

    def _energy(self, K: torch.Tensor, hands: dict, insides: dict | None = None) -> tuple[torch.Tensor, dict]:
        """The weighted energy and its terms (floats), at the current variables; ``K``
        `(T, 3, 3)` the window's cameras."""
        c = self.config
        values = dict.fromkeys(TERMS, torch.zeros(()))
        posed = _pose(hands, self.models, {side: insides[side].active if insides else self.models[side].tip_vertex_ids
                                           for side in hands})
        for side, h in hands.items():
            rot, kp, points = posed[side]
            posed[side] = (kp, points)
            values["reprojection"] = values["reprojection"] + terms.reprojection(kp, K, h.targets, h.weights, c.robust_px)
            rot_prior, transl_prior = terms.staying_near(h.omega, h.delta, _translation(h) - h.transl0, h.present, c.transl_scale)
            values["rotation_prior"] = values["rotation_prior"] + rot_prior
            values["transl_prior"] = values["transl_prior"] + transl_prior
            values["joint_smoothness"] = values["joint_smoothness"] + terms.joint_acceleration(
                kp, h.present, c.accel_scale, c.robust_accel)
            values["rotation_smoothness"] = values["rotation_smoothness"] + terms.rotation_acceleration(rot, h.present)
            values["limits"] = values["limits"] + terms.limit_violation(h.pose0 + h.delta, side, h.present)
        if insides:
            for side, other in (("right", "left"), ("left", "right")):
                found = insides[side]
                values["penetration"] = values["penetration"] + terms.penetration(
                    posed[side][1], found.frame, found.point, posed[other][1], found.triangle, c.transl_scale)
        total = sum(getattr(c, k) * v for k, v in values.items())
        return total, {k: float(v.detach()) for k, v in values.items()}

    @torch.no_grad()
    def _insides(self, hands: dict) -> dict | None:
        """Per hand, its :class:`_Contacts` with the other hand at the current variables
        (None unless both hands are in the window)."""
        if len(hands) < 2:
            return None
        meshes = {side: self._mesh(h) for side, h in hands.items()}
        both = hands["right"].present & hands["left"].present
        found = {}
        for side, other in (("right", "left"), ("left", "right")):
            verts, faces, _ = meshes[other]
            points = meshes[side][0][:, hands[side].subset]
            lo, hi = verts.min(1, keepdim=True).values, verts.max(1, keepdim=True).values
            boxed = ((points >= lo) & (points <= hi)).all(-1) & both[:, None]  # (T, N): may be inside
            t, p = torch.nonzero(boxed, as_tuple=True)
            inner = inside_frames(points[t, p], t, verts, faces)
            t, p = t[inner], p[inner]
            model = self.models[other]
            nearest, _ = nearest_triangles(points[t, p], t, verts[:, :model.num_vertices], model.faces,
                                           self._around[other])
            found[side] = (t, hands[side].subset[p], model.faces[nearest])
        return _contacts(found, {side: self.models[side].tip_vertex_ids for side in hands})

    def _mesh(self, h: _Hand) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The hand's closed mesh `(T, V', 3)` at the current variables (the model's ``V``
        vertices first, then the caps' centres), its faces, and its keypoints `(T, 21, 3)`."""
        model = self.models[h.side]
        out = model(rotmats=_rotations(h), betas=h.betas)
        t = _translation(h)[:, None]
        return (*close_holes(out.vertices + t, model.faces.cpu().numpy(), self._closures[h.side]), out.keypoints + t)

    @torch.no_grad()
    def _results(self, results, hands: dict) -> list[FrameResult | None]:
        """The results with the refined hands (parameters, keypoints, vertices, v)."""
        posed = {}
        for side, h in hands.items():
            model = self.models[side]
            rot = _rotations(h)
            out = model(rotmats=rot, betas=h.betas)
            t = _translation(h)[:, None]
            posed[side] = (matrix_to_axis_angle(rot[:, 0]), h.pose0 + h.delta, _translation(h),
                           out.keypoints + t, out.vertices + t)
        refined = []
        for t, r in enumerate(results):
            if r is None:
                refined.append(None)
                continue
            new = dict(r.hands)
            for side, (go, hp, tr, kp, vs) in posed.items():
                if side in new and bool(hands[side].free[t]):
                    kp_t = kp[t].numpy().astype(np.float64)
                    new[side] = dataclasses.replace(
                        new[side], global_orient=go[t].numpy().astype(np.float64),
                        hand_pose=hp[t].numpy().astype(np.float64), transl=tr[t].numpy().astype(np.float64),
                        keypoints_3d=kp_t, keypoints_2d=_project_np(kp_t, r.K), vertices=vs[t].numpy().astype(np.float64))
            v = new["left"].keypoints_3d[0] - new["right"].keypoints_3d[0] if len(new) == 2 else None
            refined.append(dataclasses.replace(r, hands=new, v=v))
        return refined


def smoothness_basis(free: torch.Tensor, present: torch.Tensor, ratio: float) -> torch.Tensor:
    """`(T, F)` the map ``A`` from ``F`` preconditioned variables to a track over the ``T``
    frames that is zero off the ``free`` `(T,)` frames: on the free frames ``A = M^-1/2``,
    the symmetric root, with ``M = I + ratio D^T D`` (``D`` the second differences over
    triples of ``present`` `(T,)` frames, restricted to the free ones). For a quadratic energy
    ``x^T (I + ratio D^T D) x``, the variables ``z`` see the identity: smoothness couples
    frames and makes the problem stiff (its curvature spans ``1 .. 1 + 16 ratio``), which
    the change of variables undoes, so a few L-BFGS steps reach what took many."""
    T = len(free)
    triples = (present[:-2] & present[1:-1] & present[2:]).to(torch.float64)
    D = torch.zeros(max(T - 2, 0), T, dtype=torch.float64)
    rows = torch.arange(len(D))
    D[rows, rows], D[rows, rows + 1], D[rows, rows + 2] = triples, -2 * triples, triples
    idx = torch.nonzero(free).flatten()
    M = torch.eye(len(idx), dtype=torch.float64) + ratio * (D.T @ D)[idx][:, idx]
    lam, V = torch.linalg.eigh(M)
    A = torch.zeros(T, len(idx), dtype=torch.float64)
    A[idx] = (V * lam.rsqrt()) @ V.T  # the symmetric root: no frame of the window is special
    return A.to(torch.float32)


def steady_depths(depths: np.ndarray, present: np.ndarray, reach: int, ratio: float) -> np.ndarray:
    """`(T,)` the ``depths`` `(T,)` (m, positive where ``present`` `(T,)`), with each present
    one that is more than ``ratio`` times off (either way) the median of the present depths
    within ``reach`` frames of it (itself included, at least three of them) replaced by
    that median. A depth that moves steadily is its neighbours' median and stays; a spike,
    as the network gives a hand it barely sees (5.98 m for one frame between 0.79 and
    0.92), does not; a hand seen alone after a gap has too few neighbours to judge."""
    out = np.array(depths, dtype=np.float64)
    z = np.where(present, np.maximum(out, 1e-6), np.nan)
    for t in np.flatnonzero(present):
        near = z[max(t - reach, 0):t + reach + 1]
        near = near[~np.isnan(near)]
        if len(near) >= 3 and abs(math.log(z[t] / np.median(near))) > math.log(ratio):
            out[t] = np.median(near)
    return out


def _K(r: FrameResult | None) -> np.ndarray:
    return np.eye(3) if r is None else np.asarray(r.K, np.float64)


def _project_np(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    p = points @ np.asarray(K).T
    return p[:, :2] / p[:, 2:]


def _subset(model, stride: int) -> torch.Tensor:
    """Vertex ids the energy skins: the fingertips first, then every ``stride``-th vertex."""
    tips = model.tip_vertex_ids.cpu()
    rest = torch.arange(0, model.num_vertices, stride)
    return torch.cat([tips, rest[~torch.isin(rest, tips)]])


def _hand(side: str, frames: list, fixed: int, model, subset: torch.Tensor, c: RefineConfig) -> _Hand | None:
    """The window's track of one hand, or None when it is present in fewer than two
    frames (a hand seen once is left as the network gave it)."""
    T = len(frames)
    present = torch.tensor([r is not None and side in r.hands for r, _ in frames])
    if int(present[fixed:].sum()) < 2:
        return None
    f32 = dict(dtype=torch.float32)
    go, hp, tr, betas, wrists = (torch.zeros(T, n, **f32) for n in (3, 45, 3, 10, 3))
    targets, weights = torch.zeros(2, T, 21, 2, **f32), torch.zeros(2, T, 21, **f32)
    for t, (r, landmarks) in enumerate(frames):
        if not bool(present[t]):
            continue
        h = r.hands[side]
        go[t], hp[t], tr[t], betas[t], wrists[t] = (torch.as_tensor(np.asarray(x, np.float64), **f32) for x in (
            h.global_orient, h.hand_pose, h.transl, h.betas, h.keypoints_3d[0]))
        targets[0, t], weights[0, t] = torch.as_tensor(h.keypoints_2d, **f32), 1.0
        lm, score = (landmarks or {}).get(side, (None, 0.0))
        if lm is not None:
            targets[1, t], weights[1, t] = torch.as_tensor(np.asarray(lm, np.float64), **f32), float(score)
    free = present.clone()
    free[:fixed] = False
    resited = torch.zeros(T, dtype=torch.bool)
    if c.depth_ratio is not None:
        depth = wrists[:, 2].double().numpy()
        steady = torch.as_tensor(steady_depths(depth, present.numpy(), c.depth_reach, c.depth_ratio), **f32)
        resited = free & (steady != wrists[:, 2])
        tr = tr + torch.where(resited, steady / wrists[:, 2] - 1, 0.0)[:, None] * wrists  # along the ray
    weights = weights * torch.tensor([c.network_weight, c.detector_weight])[:, None, None]
    with torch.no_grad():
        rest = model(rotmats=torch.eye(3).expand(T, 16, 3, 3), betas=betas)
    return _Hand(side, present, free, axis_angle_to_matrix(go), hp, tr, betas, rest.joints,
                 subset, bool(model.posedirs.any()), rest.vertices, targets, weights, torch.zeros(T, 3),
                 torch.zeros(T, 45), torch.zeros(T, 3), resited)


TRANSL_UNIT = 0.01  # metres per unit of the translation variable
_DEPTH_AXIS = ((0.0, 0.0, 1.0), (0.0, 0.0, -1.0))  # the left hand farther, or nearer


def _translation(h: _Hand) -> torch.Tensor:
    """`(T, 3)` the hand's translation at the current variables."""
    return h.transl0 + TRANSL_UNIT * h.shift


def _rotations(h: _Hand) -> torch.Tensor:
    """`(T, 16, 3, 3)`: the root turned by ``omega``, the fingers by ``pose0 + delta``."""
    return _rotations_of([h])


def _rotations_of(hands: list[_Hand]) -> torch.Tensor:
    """`(H T, 16, 3, 3)`: :func:`_rotations` of the hands, stacked, in one conversion."""
    turns = torch.cat([torch.cat([h.omega[:, None], (h.pose0 + h.delta).reshape(-1, 15, 3)], 1) for h in hands])
    mats = axis_angle_to_matrix(turns)
    return torch.cat([(mats[:, 0] @ torch.cat([h.R0 for h in hands]))[:, None], mats[:, 1:]], dim=1)


def _pose(hands: dict, models: dict, active: dict) -> dict:
    """Per side, rotations `(T, 16, 3, 3)`, keypoints `(T, 21, 3)` and the skinned points
    `(T, M, 3)` (camera frame) at the current variables: linear blend skinning of the
    vertices ``active`` only (per side, vertex ids, the fingertips first).
    Both hands go through the kinematic chain and the skinning as one batch, which halves
    the operations that the energy's gradient goes back through."""
    sides = list(hands)
    hs = [hands[s] for s in sides]
    T = len(hs[0].present)
    ids = [active[s] for s in sides]
    counts = [len(i) for i in ids]
    ids = [torch.cat([i, i[:1].expand(max(counts) - len(i))]) for i in ids]  # padded to one width
    rot = _rotations_of(hs)
    joints, rel = batch_rigid_transform(rot, torch.cat([h.joints_rest for h in hs]), models[sides[0]].parents.tolist())
    points = torch.cat([h.rest[:, i] for h, i in zip(hs, ids)])
    if any(h.correctives for h in hs):
        points = points + torch.cat([pose_blend_shapes(rot[k * T:(k + 1) * T], models[s].posedirs[i])
                                     for k, (s, h, i) in enumerate(zip(sides, hs, ids))])
    weights = torch.cat([models[s].lbs_weights[i].expand(T, -1, -1) for s, i in zip(sides, ids)])
    t = torch.cat([_translation(h) for h in hs])[:, None]
    skinned = skin_vertices(points, weights, rel) + t
    kp = keypoints_from_joints(joints + t, skinned, torch.arange(5))
    return {s: (rot[k * T:(k + 1) * T], kp[k * T:(k + 1) * T], skinned[k * T:(k + 1) * T, :counts[k]])
            for k, s in enumerate(sides)}


@dataclass
class _Contacts:
    """One hand's points inside the other over a window, on the vertices ``active`` `(M,)`
    (its fingertips, its points inside the other, and the corners of its triangles
    nearest to the other's inner points: all the energy needs to skin of it)."""

    active: torch.Tensor
    frame: torch.Tensor  # (K,) of each inner point
    point: torch.Tensor  # (K,) its place in active
    triangle: torch.Tensor  # (K, 3) the other's nearest triangle, places in the other's active


def _contacts(found: dict, tips: dict) -> dict[str, _Contacts]:
    """Per side, from ``(frame (K,), vertex (K,), the other's nearest triangle (K, 3))``
    in vertex ids, the :class:`_Contacts` on the active vertices."""
    active = {}
    for side, other in (("right", "left"), ("left", "right")):
        used = torch.unique(torch.cat([found[side][1], found[other][2].flatten()]))
        active[side] = torch.cat([tips[side], used[~torch.isin(used, tips[side])]])
    place = {}
    for side, ids in active.items():
        place[side] = torch.full((int(ids.max()) + 1,), -1, dtype=torch.long)
        place[side][ids] = torch.arange(len(ids))
    return {side: _Contacts(active[side], found[side][0], place[side][found[side][1]], place[other][found[side][2]])
            for side, other in (("right", "left"), ("left", "right"))}
