"""Online (causal) smoothing of the per-frame hands: the One-Euro filter.

The One-Euro filter (Casiez, Roussel and Vogel, "1 Euro Filter: A Simple Speed-based
Low-pass Filter for Noisy Input in Interactive Systems", CHI 2012) is a first-order
low-pass filter whose cutoff rises with the signal's speed: at rest it removes jitter
strongly, in fast motion it follows with little lag. It looks at no future sample, so
each frame is smoothed as soon as it arrives (live use). For a sample ``x`` at time ``t``
(seconds), ``dt`` after the previous one, with previous output ``x_hat_prev`` and
previous filtered speed ``dx_hat_prev`` (the paper's equations; ``alpha`` from the
actual ``dt``, so irregular timestamps are handled)::

    alpha(dt, f_c) = 1 / (1 + tau / dt),   tau = 1 / (2 pi f_c)
    dx     = (x - x_hat_prev) / dt
    dx_hat = alpha(dt, d_cutoff) dx + (1 - alpha(dt, d_cutoff)) dx_hat_prev
    f_c    = min_cutoff + beta |dx_hat|
    x_hat  = alpha(dt, f_c) x + (1 - alpha(dt, f_c)) x_hat_prev

The first sample of a track is passed through unchanged (``dx_hat = 0``).

- :class:`OneEuro` filters arrays (keypoints `(21, 3)` / `(21, 2)`, translations `(3,)`,
  betas `(10,)`); ``|dx_hat|`` is the speed of each point (the norm over the last axis,
  so the filter does not depend on the axes) or, with ``norm_axis=None``, of each
  element (the paper's scalar filter).
- :class:`OneEuroRotation` filters rotations on SO(3), never their axis-angle
  components: unit quaternions ``(w, x, y, z)`` (as :mod:`fourdhands.geometry.rotations`),
  each input sign-aligned to the previous output, ``dx`` the angular velocity
  ``log(q_hat_prev^-1 q) / dt`` (rad/s), ``|dx_hat|`` the angular speed, and the low-pass
  step ``slerp(q_hat_prev, q, alpha)``.
- :func:`median_depth` is a causal median of a hand's last few depths. A network that
  barely sees a hand throws it metres away (or centimetres from the lens) for a frame:
  0.79, 5.98, 0.92 m. One-Euro follows such a spike, as its speed opens the cutoff; a
  median of the last 3 depths drops a one-frame spike and adopts a lasting change one
  frame late, with no look-ahead and no state of its own to lock onto a wrong depth.
- :class:`HandSmoother` smooths a frame's hands (:class:`~fourdhands.pipeline.FrameResult`
  or a dict by side): first the hand slides along its camera ray (the wrist's, else the
  translation's: its 2D place is kept) to the median of its last ``depth_window``
  depths, then global_orient + hand_pose by the rotation filter (16 joints),
  transl and betas by the vector filter. Given the hand models it recomputes the
  vertices and 3D keypoints from the smoothed parameters and reprojects the 2D keypoints
  by the frame's ``K``, so every output agrees with the smoothed parameters (vertices are
  never filtered on their own); without them it filters the keypoints directly and
  returns no vertices. A side missing from a frame drops its state: when the hand comes
  back its new track starts unfiltered.

Units of the parameters: ``min_cutoff`` and ``d_cutoff`` in Hz; ``beta`` in Hz per unit
of speed, i.e. 1 / (signal unit): per metre, per pixel, per radian. Defaults (for hands
tracked at about 30 fps; see :class:`SmoothingConfig`) keep the paper's ``d_cutoff`` =
1 Hz and ``min_cutoff`` = 1 Hz (at rest alpha = 0.17 at 30 fps: white jitter's standard
deviation drops about 3x, with a 0.16 s time constant that only shows while the hand is
nearly still). ``beta`` sets how fast the cutoff opens: 10 / m for metres (a hand moving
0.5 m/s gets a 6 Hz cutoff, alpha = 0.56; on synthetic 30 fps tracks with 2-5 mm jitter
this removes the jitter's acceleration 4x at low speed and lags a 1 m/s reach by about
1.2 cm, where 20 / m lags 0.8 cm but removes only 3x), 0.005 / px for pixels (the same
hand 0.5 m from a camera of ~1000 px focal: 1 m is ~2000 px; rescale ``beta_px =
beta_m * depth / focal`` for other set-ups), 1 / rad for joint rotations (a joint
turning at 5 rad/s gets 6 Hz and lags it by 6 degrees; 3 degree jitter per axis comes
out 2.5x smaller on average, and beta hardly changes that, since the jitter's speed is
mostly removed by the ``d_cutoff`` low-pass). Betas get a fixed 0.25 Hz (a hand's shape
does not move). Per-frame cost for two hands (filters only) is about 0.5-0.9 ms in numpy
on one CPU core; the hand-model forward, when asked for, costs more (tens of ms on CPU).
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = [
    "OneEuroConfig", "OneEuro", "OneEuroRotation", "SmoothingConfig", "HandSmoother",
    "smoothing_alpha", "quaternion_multiply", "quaternion_log", "quaternion_exp",
    "slerp", "axis_angle_to_quaternion", "quaternion_to_axis_angle",
    "matrix_to_quaternion", "quaternion_to_matrix", "median_depth", "METRES", "PIXELS", "RADIANS",
    "SHAPE",
]


@dataclass(frozen=True)
class OneEuroConfig:
    """One-Euro parameters (Casiez et al. 2012).

    min_cutoff: cutoff frequency at rest, Hz (lower: smoother at rest, more lag when slow).
    beta: cutoff increase per unit of speed, Hz / (unit / s) = 1 / unit (higher: less lag
        in fast motion, more jitter in it). Depends on the signal's unit.
    d_cutoff: cutoff of the speed estimate's own low-pass, Hz.
    """

    min_cutoff: float = 1.0
    beta: float = 0.0
    d_cutoff: float = 1.0

    def __post_init__(self):
        if not (self.min_cutoff > 0 and self.d_cutoff > 0 and self.beta >= 0):
            raise ValueError(f"One-Euro needs min_cutoff > 0, d_cutoff > 0, beta >= 0; got {self}")


#: hands' 3D positions in metres (keypoints_3d, transl).
METRES = OneEuroConfig(min_cutoff=1.0, beta=10.0, d_cutoff=1.0)
#: 2D keypoints in image pixels (~1000 px focal, hand ~0.5 m away).
PIXELS = OneEuroConfig(min_cutoff=1.0, beta=0.005, d_cutoff=1.0)
#: joint rotations, speed in rad/s.
RADIANS = OneEuroConfig(min_cutoff=1.0, beta=1.0, d_cutoff=1.0)
#: shape coefficients: a hand's shape does not change, so a slow fixed cutoff.
SHAPE = OneEuroConfig(min_cutoff=0.25, beta=0.0, d_cutoff=1.0)


def smoothing_alpha(dt, cutoff):
    """``alpha = 1 / (1 + tau / dt)``, ``tau = 1 / (2 pi cutoff)`` (Casiez et al. 2012, eq. 4
    with the sampling period ``dt`` in seconds and ``cutoff`` in Hz; broadcasts)."""
    tau = 1.0 / (2.0 * np.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def _check_time(t: float, t_prev: float | None) -> float:
    t = float(t)
    if not np.isfinite(t):
        raise ValueError(f"timestamp must be finite, got {t}")
    if t_prev is not None and not t > t_prev:
        raise ValueError(f"timestamps must increase: got t={t} after t={t_prev}")
    return t


class OneEuro:
    """One-Euro filter for arrays of a fixed shape (Casiez et al. 2012; module docstring).

    ``norm_axis``: the axis over which the speed ``|dx_hat|`` is a Euclidean norm (each
    point gets one cutoff: -1 for keypoints `(21, 3)`, a translation `(3,)`), or None
    for one cutoff per element (the paper's scalar filter; for betas).

    ``update(t, x)`` (or calling the filter) takes the time in seconds (increasing, any
    spacing) and a sample, and returns the filtered sample (a new float64 array).
    """

    def __init__(self, config: OneEuroConfig = OneEuroConfig(), norm_axis: int | None = -1):
        self.config = config
        self.norm_axis = norm_axis
        self.reset()

    def reset(self) -> None:
        """Forget the track: the next sample is passed through unchanged."""
        self.t_prev: float | None = None
        self.x_hat: np.ndarray | None = None
        self.dx_hat: np.ndarray | None = None

    def update(self, t: float, x) -> np.ndarray:
        """Filter sample ``x`` taken at time ``t`` (seconds) -> the filtered sample."""
        x = np.array(x, dtype=float)
        t = _check_time(t, self.t_prev)
        if self.x_hat is None:
            self.t_prev, self.x_hat, self.dx_hat = t, x, np.zeros_like(x)
            return x.copy()
        if x.shape != self.x_hat.shape:
            raise ValueError(f"sample shape {x.shape} != track shape {self.x_hat.shape}")
        cfg, dt = self.config, t - self.t_prev
        a_d = smoothing_alpha(dt, cfg.d_cutoff)
        self.dx_hat = a_d * (x - self.x_hat) / dt + (1 - a_d) * self.dx_hat
        if self.norm_axis is None:
            speed = np.abs(self.dx_hat)
        else:
            speed = np.sqrt((self.dx_hat * self.dx_hat).sum(self.norm_axis, keepdims=True))
        a = smoothing_alpha(dt, cfg.min_cutoff + cfg.beta * speed)
        self.x_hat = a * x + (1 - a) * self.x_hat
        self.t_prev = t
        return self.x_hat.copy()

    __call__ = update


# ----------------------------------------------------------------------------- quaternions
# numpy, (w, x, y, z) scalar first, batched over leading axes (as geometry.rotations).


def _norm(x: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """Euclidean norm over the last axis (cheaper than np.linalg.norm on small arrays)."""
    return np.sqrt((x * x).sum(-1, keepdims=keepdims))


def _hamilton_table() -> np.ndarray:
    """``(16, 4)``: ``p q = outer(p, q).reshape(16) @ table`` for quaternions ``(w, x, y, z)``."""
    table = np.zeros((4, 4, 4))
    # (i, j, k, sign): component k of p q gets sign * p_i q_j
    terms = [(0, 0, 0, 1), (1, 1, 0, -1), (2, 2, 0, -1), (3, 3, 0, -1),
             (0, 1, 1, 1), (1, 0, 1, 1), (2, 3, 1, 1), (3, 2, 1, -1),
             (0, 2, 2, 1), (1, 3, 2, -1), (2, 0, 2, 1), (3, 1, 2, 1),
             (0, 3, 3, 1), (1, 2, 3, 1), (2, 1, 3, -1), (3, 0, 3, 1)]
    for i, j, k, sign in terms:
        table[i, j, k] = sign
    return table.reshape(16, 4)


_HAMILTON = _hamilton_table()


def quaternion_multiply(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Hamilton product ``p q``: ``(..., 4), (..., 4) -> (..., 4)`` (broadcast)."""
    p, q = np.broadcast_arrays(p, q)
    outer = p[..., :, None] * q[..., None, :]
    return outer.reshape(outer.shape[:-2] + (16,)) @ _HAMILTON


def _conjugate(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quaternion_log(q: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, rad) of unit quaternions: ``(..., 4) -> (..., 3)``.

    The representative with ``w >= 0`` is used, so the angle is in ``[0, pi]``."""
    q = np.where(q[..., :1] < 0, -q, q)
    w, v = q[..., 0], q[..., 1:]
    n = _norm(v)
    small = n < 1e-8
    # 2 atan2(n, w) / n, with its limit 2 / w (w ~ 1) for tiny n
    scale = np.where(small, 2.0 / np.maximum(w, 1e-12), 2.0 * np.arctan2(n, w) / np.where(small, 1.0, n))
    return scale[..., None] * v


def quaternion_exp(r: np.ndarray) -> np.ndarray:
    """Unit quaternion of rotation vectors (axis * angle, rad): ``(..., 3) -> (..., 4)``."""
    half = 0.5 * _norm(r, keepdims=True)
    small = half < 1e-4
    # sin(h) / h, its series 1 - h^2 / 6 (exact to rounding) below 1e-4
    sinc = np.where(small, 1 - half * half / 6, np.sin(half) / np.where(small, 1.0, half))
    out = np.empty(r.shape[:-1] + (4,))
    out[..., :1] = np.cos(half)
    out[..., 1:] = 0.5 * sinc * r
    return out


def axis_angle_to_quaternion(r) -> np.ndarray:
    """Axis-angle to unit quaternion: ``(..., 3) -> (..., 4)``."""
    return quaternion_exp(np.asarray(r, float))


def quaternion_to_axis_angle(q) -> np.ndarray:
    """Unit quaternion to axis-angle, angle in ``[0, pi]``: ``(..., 4) -> (..., 3)``."""
    return quaternion_log(np.asarray(q, float))


def quaternion_to_matrix(q) -> np.ndarray:
    """Quaternion (any nonzero norm) to rotation matrix: ``(..., 4) -> (..., 3, 3)``."""
    q = np.asarray(q, float)
    w, x, y, z = np.moveaxis(q, -1, 0)
    s = 2.0 / (q * q).sum(-1)
    return np.stack([
        1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w),
        s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w),
        s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y),
    ], axis=-1).reshape(q.shape[:-1] + (3, 3))


def matrix_to_quaternion(m) -> np.ndarray:
    """Rotation matrix to unit quaternion, ``w >= 0``: ``(..., 3, 3) -> (..., 4)`` (the
    largest-component rows, stable near angle pi, as in geometry.rotations)."""
    m = np.asarray(m, float)
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = np.moveaxis(m.reshape(m.shape[:-2] + (9,)), -1, 0)
    rows = np.stack([
        np.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], -1),
        np.stack([m21 - m12, 1 + m00 - m11 - m22, m10 + m01, m02 + m20], -1),
        np.stack([m02 - m20, m10 + m01, 1 - m00 + m11 - m22, m12 + m21], -1),
        np.stack([m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22], -1),
    ], axis=-2)
    best = np.diagonal(rows, axis1=-2, axis2=-1).argmax(-1)
    row = np.take_along_axis(rows, best[..., None, None], axis=-2)[..., 0, :]
    row = row / _norm(row, keepdims=True)
    return np.where(row[..., :1] < 0, -row, row)


def slerp(p: np.ndarray, q: np.ndarray, alpha) -> np.ndarray:
    """Spherical interpolation ``p (p^-1 q)^alpha`` along the shorter arc (``q`` is
    sign-aligned to ``p`` first); ``alpha`` broadcasts against ``(...)``. Returns unit
    quaternions on ``p``'s side: ``slerp(p, q, 0) = p``, ``slerp(p, q, 1) = +-q``."""
    q = np.where((p * q).sum(-1, keepdims=True) < 0, -q, q)
    r = quaternion_log(quaternion_multiply(_conjugate(p), q))
    out = quaternion_multiply(p, quaternion_exp(np.asarray(alpha, float)[..., None] * r))
    return out / _norm(out, keepdims=True)


class OneEuroRotation:
    """One-Euro filter on SO(3) for a fixed number of rotations (e.g. 16 joints).

    ``update(t, q)``: unit quaternions ``(..., 4)`` ``(w, x, y, z)`` (either sign; each is
    aligned to the previous output) -> filtered unit quaternions, each continuous with
    the previous output (no sign flips; ``w`` may become negative). The speed is the
    angular speed ``|log(q_hat_prev^-1 q)| / dt`` (rad/s) after the same low-pass as
    :class:`OneEuro` (applied to the angular-velocity vector, in the previous output's
    frame, so noise averages out rather than adding up), one cutoff per rotation; the
    step is ``slerp(q_hat_prev, q, alpha)`` (Casiez et al. 2012 carried to SO(3)).
    ``update_axis_angle`` / ``update_matrix`` take and return those representations.
    """

    def __init__(self, config: OneEuroConfig = RADIANS):
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Forget the track: the next rotation is passed through unchanged."""
        self.t_prev: float | None = None
        self.q_hat: np.ndarray | None = None
        self.omega_hat: np.ndarray | None = None

    def update(self, t: float, q) -> np.ndarray:
        """Filter quaternions ``q`` ``(..., 4)`` taken at time ``t`` (seconds)."""
        q = np.array(q, dtype=float)
        q = q / _norm(q, keepdims=True)
        t = _check_time(t, self.t_prev)
        if self.q_hat is None:
            self.t_prev, self.q_hat, self.omega_hat = t, q, np.zeros(q.shape[:-1] + (3,))
            return q.copy()
        if q.shape != self.q_hat.shape:
            raise ValueError(f"rotations shape {q.shape} != track shape {self.q_hat.shape}")
        cfg, dt = self.config, t - self.t_prev
        q = np.where((self.q_hat * q).sum(-1, keepdims=True) < 0, -q, q)
        rel = quaternion_log(quaternion_multiply(_conjugate(self.q_hat), q))  # (..., 3) rad
        a_d = smoothing_alpha(dt, cfg.d_cutoff)
        self.omega_hat = a_d * rel / dt + (1 - a_d) * self.omega_hat
        a = smoothing_alpha(dt, cfg.min_cutoff + cfg.beta * _norm(self.omega_hat, keepdims=True))
        out = quaternion_multiply(self.q_hat, quaternion_exp(a * rel))
        self.q_hat = out / _norm(out, keepdims=True)
        self.t_prev = t
        return self.q_hat.copy()

    __call__ = update

    def update_axis_angle(self, t: float, r) -> np.ndarray:
        """Axis-angle ``(..., 3)`` in and out (angles in ``[0, pi]``)."""
        return quaternion_to_axis_angle(self.update(t, axis_angle_to_quaternion(r)))

    def update_matrix(self, t: float, m) -> np.ndarray:
        """Rotation matrices ``(..., 3, 3)`` in and out."""
        return quaternion_to_matrix(self.update(t, matrix_to_quaternion(m)))


# ----------------------------------------------------------------------------- hands


def median_depth(depths) -> float:
    """The depth a hand slides to along its ray: the median of its last few depths
    ``(k,)`` (metres, the newest last; the caller keeps the window), or the newest one
    when any of them is not in front of the camera."""
    depths = [float(z) for z in depths]  # a few numbers: the standard library's median is 10x numpy's speed
    return statistics.median(depths) if min(depths) > 0 else depths[-1]


@dataclass(frozen=True)
class SmoothingConfig:
    """One-Euro parameters per quantity of a hand (units in the module docstring).

    rotation: the 16 joint rotations (global_orient + 15 of hand_pose), rad;
    transl, keypoints_3d: metres; keypoints_2d: pixels (used only without hand models);
    betas: shape coefficients (unitless, per element);
    depth_window: how many of a hand's latest depths :func:`median_depth` takes (1: none).
        3 on the held-out synthetic splits (``benchmarks/bench_refine.py``): ``occluded``
        Accel_E 482 -> 237 mm/frame^2 (the network alone: 533), ``interacting`` 20.0 ->
        13.9; 5 steadies more but holds two-frame spikes, MRRPE 393 -> 540 mm on
        ``occluded``.
    """

    rotation: OneEuroConfig = RADIANS
    transl: OneEuroConfig = METRES
    betas: OneEuroConfig = SHAPE
    keypoints_3d: OneEuroConfig = METRES
    keypoints_2d: OneEuroConfig = PIXELS
    depth_window: int = 3

    def __post_init__(self):
        if self.depth_window < 1:
            raise ValueError(f"depth_window must be at least 1, got {self.depth_window}")


def _field(hand, name: str):
    value = hand.get(name) if isinstance(hand, Mapping) else getattr(hand, name, None)
    return None if value is None else np.asarray(value, float)


@dataclass
class _Track:
    rotation: OneEuroRotation
    transl: OneEuro
    betas: OneEuro
    keypoints_3d: OneEuro
    keypoints_2d: OneEuro
    depths: deque


class HandSmoother:
    """Causal per-hand smoothing of a tracker's frames (module docstring).

    Args:
        config: the filters' parameters.
        models: optional ``{"right": HandModel, "left": HandModel}``
            (:func:`fourdhands.hands.load_hand_model`, ``flat_hand_mean`` True as the
            pipeline's results). With them, vertices and keypoints_3d are the model's
            output for the smoothed parameters and keypoints_2d their projection by ``K``
            (pinhole, OpenCV axes), so every output agrees with the parameters.

    ``update(t, hands, K=None)``: ``t`` the frame's time in seconds (increasing, any
    spacing; ``frame.index / fps`` for a video, the capture clock live); ``hands`` a :class:`~fourdhands.pipeline.FrameResult` (its ``hands`` and,
    unless ``K`` is given, its ``K``) or a mapping side -> hand (a ``HandResult`` or a
    dict with global_orient `(3,)`, hand_pose `(45,)`, betas, transl `(3,)` and
    optionally keypoints_3d `(21, 3)`, keypoints_2d `(21, 2)`). Returns
    ``{side: {"global_orient", "hand_pose", "betas", "transl", "keypoints_3d",
    "keypoints_2d", ["vertices"]}}`` (numpy float64) for the sides present; keypoints are
    left out where neither the input nor the models give them (with models, keypoints_2d
    needs ``K``). A side absent from the
    call is reset, so its next appearance starts a new, unfiltered track.
    """

    def __init__(self, config: SmoothingConfig = SmoothingConfig(), models: Mapping | None = None):
        self.config = config
        self.models = dict(models) if models is not None else None
        self.tracks: dict[str, _Track] = {}

    def reset(self, side: str | None = None) -> None:
        """Forget one side's track (or every track)."""
        if side is None:
            self.tracks.clear()
        else:
            self.tracks.pop(side, None)

    def _track(self, side: str) -> _Track:
        if side not in self.tracks:
            c = self.config
            self.tracks[side] = _Track(OneEuroRotation(c.rotation), OneEuro(c.transl, -1),
                                       OneEuro(c.betas, None), OneEuro(c.keypoints_3d, -1),
                                       OneEuro(c.keypoints_2d, -1), deque(maxlen=c.depth_window))
        return self.tracks[side]

    def update(self, t: float, hands, K=None) -> dict[str, dict[str, np.ndarray]]:
        """Smooth one frame's hands (see the class docstring)."""
        if hasattr(hands, "hands"):
            K = getattr(hands, "K", None) if K is None else K
            hands = hands.hands
        for side in list(self.tracks):
            if side not in hands:
                del self.tracks[side]
        out = {side: self._update_hand(t, side, hand) for side, hand in hands.items()}
        if self.models is not None and out:
            self._recompute(out, K)
        return out

    __call__ = update

    def _update_hand(self, t: float, side: str, hand) -> dict[str, np.ndarray]:
        track = self._track(side)
        transl, keypoints_3d = _field(hand, "transl"), _field(hand, "keypoints_3d")
        ray = transl if keypoints_3d is None else keypoints_3d[0]
        track.depths.append(ray[2])
        # along the ray, so the 2D place is kept (a ray not in front of the camera is left)
        shift = (median_depth(track.depths) / ray[2] - 1) * ray if ray[2] > 0 else np.zeros(3)
        pose = np.concatenate([_field(hand, "global_orient"), _field(hand, "hand_pose")]).reshape(-1, 3)
        pose = track.rotation.update_axis_angle(t, pose)
        result = {"global_orient": pose[0], "hand_pose": pose[1:].reshape(-1),
                  "betas": track.betas.update(t, _field(hand, "betas")),
                  "transl": track.transl.update(t, transl + shift)}
        if self.models is None:
            inputs = {"keypoints_3d": None if keypoints_3d is None else keypoints_3d + shift,
                      "keypoints_2d": _field(hand, "keypoints_2d")}
            for name, value in inputs.items():
                if value is not None:
                    result[name] = getattr(track, name).update(t, value)
        return result

    def _recompute(self, out: dict[str, dict[str, np.ndarray]], K) -> None:
        """Vertices and keypoints of the smoothed parameters, from the hand models."""
        import torch

        for side, params in out.items():
            args = {k: params[k][None] for k in ("global_orient", "hand_pose", "betas", "transl")}
            with torch.no_grad():
                posed = self.models[side](**args)  # converts to its own dtype and device
            params["vertices"] = posed.vertices[0].double().cpu().numpy()
            params["keypoints_3d"] = posed.keypoints[0].double().cpu().numpy()
            if K is not None:
                uvw = params["keypoints_3d"] @ np.asarray(K, float).T
                params["keypoints_2d"] = uvw[:, :2] / uvw[:, 2:]
