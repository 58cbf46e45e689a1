"""Hand motion for synthetic sequences: smooth trajectories through keyframes, and the
scenarios that say where each hand goes and how its fingers move
(:mod:`~fourdhands.synth.fingers` keeps them within joint limits).

Trajectories. Keyframes every 10-20 frames (30 fps nominal), interpolated by monotone
cubics (PCHIP: C1, never overshoots its keys, so finger poses stay within the limits and
a hand kept outside the image between two keys stays outside) and, for rotations, by a
rotation spline (C2, through the keys). Hand positions are planned in image terms, the
palm centre's pixel and the hand's size in pixels (``u, v, log z``), and back-projected
with the camera, so hands land anywhere in the frame at any size whatever the focal.

Scenarios (:data:`SCENARIOS`): two-hand interaction (``interlock``, ``palms_together``,
``crossing``, ``stacked``, ``touching``, ``overlap``), separation (``far_apart``,
``depth_scaled``), ``single_hand``, full occlusion for a run of frames
(``occluder_hides``, ``out_of_frame``, ``hand_hides_hand``) and independent hands
(``free``). :data:`SPLITS` mixes them per split.

Orientations (:func:`held_orientation`, plotted by ``python docs/orientation_plot.py``).
A hand is turned as a person holds it: its forearm first, then the wrist.

- Viewpoint, per sequence: ``third_person`` (60 %: a camera facing the person) or
  ``egocentric`` (40 %: a head-worn camera looking down at the hands).
- Forearm direction (wrist -> elbow), camera frame: in the image, down-ish, turned
  outwards (the right hand's elbow to the image's left in third person, its right seen
  from the head), by N(25 deg, 45 deg) from straight down in third person, N(15 deg,
  30 deg) egocentric; in depth, the elbow 20 deg nearer to 60 deg farther than the wrist
  in third person, 20-70 deg nearer (towards the head) egocentric.
- Forearm roll about its axis: uniform (palm, back and edge-on views alike).
- Upper arm (elbow -> shoulder, :func:`upper_arm_direction`), per hand per sequence: up
  and back towards the body in third person, outwards and towards the head egocentric;
  the elbow flexes at most 145 deg.
- Wrist, per hand per sequence: flexion N(0, 25 deg) within +-70 deg, deviation
  N(-5 deg, 10 deg) within -30..20 deg; the forearm mesh
  (:mod:`~fourdhands.synth.forearm`) follows the same bend.
- Tails: 10 % of hands are turned uniformly at random (upside down, fingers to the
  camera, ...), and from the first key the orientation wanders by up to 0.5 rad per key.

Everything here is a function of a ``numpy.random.Generator``: same stream, same motion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.spatial.transform import Rotation, RotationSpline

from ..hands import poses
from ..hands.mirror import mirror_pose
from ..sides import SIDES as _SIDES
from .fingers import articulation_to_pose, finger_keys
from .forearm import REST_AXIS, wrist_rotation

RIGHT, LEFT = 0, 1
HAND_LENGTH = 0.19  # m, wrist to middle fingertip of an open adult hand: the size unit
_REACH = 0.16  # m, farther than any keypoint or skin gets from the palm centre
_MIN_DEPTH = 0.22  # m, palm centre: keeps the whole hand well in front of the camera
KEY_GAP = (10, 20)  # frames between keyframes


# ---------------------------------------------------------------- trajectories

def key_times(rng: np.random.Generator, frames: int, gap=KEY_GAP) -> np.ndarray:
    """Keyframe times `(n,)`: 0, then steps of ``gap`` frames until past the last frame
    (the motion does not stop at the sequence's end)."""
    times = [0.0]
    while times[-1] < frames - 1:
        times.append(times[-1] + rng.uniform(*gap))
    return np.asarray(times)


def smooth_track(times: np.ndarray, values: np.ndarray, frames: int) -> np.ndarray:
    """Monotone cubic (PCHIP) through keys ``values (n, ...)`` at ``times (n,)``,
    sampled at frames 0..frames-1: `(frames, ...)`. Between two keys the track stays
    between their values."""
    values = np.asarray(values, float)
    if len(times) == 1:
        return np.repeat(values, frames, axis=0)
    return PchipInterpolator(times, values, axis=0)(np.arange(frames, dtype=float))


def rotation_track(times: np.ndarray, rotvecs: np.ndarray, frames: int) -> np.ndarray:
    """A C2 rotation spline through keys ``rotvecs (n, 3)`` (axis-angle) at ``times``:
    `(frames, 3)` axis-angle."""
    if len(times) == 1:
        return np.repeat(np.asarray(rotvecs, float), frames, axis=0)
    return RotationSpline(times, Rotation.from_rotvec(rotvecs))(np.arange(frames, dtype=float)).as_rotvec()


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly distributed rotation as axis-angle `(3,)`."""
    q = rng.normal(size=4)
    return Rotation.from_quat(q / np.linalg.norm(q)).as_rotvec()


def _small_rotation(rng: np.random.Generator, max_angle: float) -> Rotation:
    axis = rng.normal(size=3)
    return Rotation.from_rotvec(axis / np.linalg.norm(axis) * rng.uniform(0.0, max_angle))


def rotation_walk(rng: np.random.Generator, start: np.ndarray, n: int, max_step: float) -> np.ndarray:
    """`(n, 3)` axis-angle keys: ``start``, then each turned by a random rotation of at
    most ``max_step`` radians (about the camera's axes)."""
    keys = [Rotation.from_rotvec(start)]
    for _ in range(n - 1):
        keys.append(_small_rotation(rng, max_step) * keys[-1])
    return np.stack([r.as_rotvec() for r in keys])


def backproject(uv: np.ndarray, depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-frame points `(..., 3)` at pixels ``uv (..., 2)`` and ``depth (...)``."""
    x = (uv[..., 0] - K[0, 2]) / K[0, 0] * depth
    y = (uv[..., 1] - K[1, 2]) / K[1, 1] * depth
    return np.stack([x, y, depth], -1)


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixels `(..., 2)` of camera-frame points `(..., 3)` (z > 0)."""
    h = points @ K.T
    return h[..., :2] / h[..., 2:]


def depth_for_size(size_px, K: np.ndarray):
    """Depth (m) at which a hand spans ``size_px`` pixels (``HAND_LENGTH`` across)."""
    return np.maximum(K[0, 0] * HAND_LENGTH / np.asarray(size_px, float), _MIN_DEPTH)


def image_track(times: np.ndarray, uv: np.ndarray, size_px: np.ndarray, K: np.ndarray,
                frames: int) -> np.ndarray:
    """Camera-frame points `(frames, 3)` through image keys: pixels ``uv (n, 2)`` and
    hand sizes ``size_px (n,)``, interpolated in ``(u, v, log depth)``."""
    keys = np.column_stack([uv, np.log(depth_for_size(size_px, K))])
    track = smooth_track(times, keys, frames)
    return backproject(track[:, :2], np.exp(track[:, 2]), K)


def wander(rng: np.random.Generator, n: int, lo, hi, step) -> np.ndarray:
    """A random walk of ``n`` keys in the box ``[lo, hi]`` (arrays `(D,)`): uniform start,
    steps uniform in ``[-step, step]``, reflected back into the box."""
    lo, hi, step = (np.asarray(a, float) for a in (lo, hi, step))
    keys = [rng.uniform(lo, hi)]
    for _ in range(n - 1):
        x = keys[-1] + rng.uniform(-step, step)
        x = np.where(x < lo, 2 * lo - x, x)
        keys.append(np.clip(np.where(x > hi, 2 * hi - x, x), lo, hi))
    return np.stack(keys)


# ---------------------------------------------------------------- hands and scenes

@dataclass(frozen=True)
class HandRest:
    """The hand model's rest geometry (betas = 0), what scenarios are designed against.

    Attributes:
        root: `(2, 3)` rest wrist joint J0 of the right and left model.
        keypoints: `(2, 21, 3)` rest keypoints relative to J0 (OpenPose order).
    """

    root: np.ndarray
    keypoints: np.ndarray

    def palm_centre(self, slot: int) -> np.ndarray:
        """`(3,)` the mean of the wrist and the four finger MCPs, relative to J0."""
        return self.keypoints[slot, [0, 5, 9, 13, 17]].mean(0)


@dataclass
class Motion:
    """What a sequence shows, before rendering (hand slot 0 = right, 1 = left).

    Attributes:
        scenario: one of :data:`SCENARIOS`.
        present: `(2,)` bool, which hands are in the scene (throughout the sequence).
        wrist: `(F, 2, 3)` wrist joint positions, camera frame (zeros for absent hands).
        orient: `(F, 2, 3)` global_orient axis-angle.
        articulation: `(F, 2, 15, 3)` right-hand articulation; the left hand's pose is
            its mirror (:meth:`hand_pose`).
        betas: `(2, 10)` shape.
        contact_tolerance: share of a hand's vertices allowed inside the other hand
            after :func:`~fourdhands.hands.contact.separate` (None: do not separate).
        hide: how a hand is hidden, for the occlusion scenarios: ``{"by": "occluder" |
            "frame" | "hand", "slot", "start", "stop"}`` (frames start..stop-1), or None.
        wrist_bend: `(2, 2)` each hand's wrist flexion and deviation (radians), which
            set its forearm (:func:`fourdhands.synth.forearm.wrist_rotation`).
        viewpoint: one of :data:`VIEWPOINTS`.
    """

    scenario: str
    present: np.ndarray
    wrist: np.ndarray
    orient: np.ndarray
    articulation: np.ndarray
    betas: np.ndarray
    contact_tolerance: float | None = 0.01
    hide: dict | None = None
    wrist_bend: np.ndarray | None = None
    viewpoint: str = "third_person"

    @property
    def hand_pose(self) -> np.ndarray:
        """`(F, 2, 45)` hand_pose (flat_hand_mean=True), the left one mirrored."""
        pose = articulation_to_pose(self.articulation)
        pose[:, LEFT] = mirror_pose(pose[:, LEFT])
        return pose


# ---------------------------------------------------------------- scenario building blocks

@dataclass
class View:
    """The camera, image size and length a scenario plans for, the viewpoint and the
    hands' wrist bends `(2, 2)` (flexion, deviation)."""

    K: np.ndarray
    width: int
    height: int
    frames: int
    viewpoint: str = "third_person"
    bends: np.ndarray = field(default_factory=lambda: np.zeros((2, 2)))

    @property
    def short(self) -> int:
        return min(self.width, self.height)

    def wander_uv(self, rng, n, margin=0.1, step=0.25, u_range=(0.0, 1.0)):
        """`(n, 2)` pixel keys inside the image less ``margin``, u within ``u_range``
        (fractions of the width)."""
        w, h = self.width, self.height
        lo = (max(margin, u_range[0]) * w, margin * h)
        hi = (min(1 - margin, u_range[1]) * w, (1 - margin) * h)
        return wander(rng, n, lo, hi, (step * w, step * h))

    def wander_size(self, rng, n, lo, hi, step=0.15):
        """`(n,)` hand sizes in pixels, fractions ``[lo, hi]`` of the shorter side."""
        return np.exp(wander(rng, n, [np.log(lo)], [np.log(hi)], [step])[:, 0]) * self.short

    def outside(self, uv: np.ndarray, size_px: float) -> np.ndarray:
        """`(2,)` a pixel beyond the image border nearest to ``uv``, far enough that a
        hand of ``size_px`` centred there has no point in the image."""
        K = self.K
        z = float(depth_for_size(size_px, K))
        reach = K[0, 0] * _REACH / (z - _REACH)
        # off-axis, the hand's depth extent shifts its image too: bound |x / z| first
        slope = (max(self.width, self.height) / 2 + reach) / K[0, 0]
        reach = 1.2 * K[0, 0] * _REACH * (1 + slope) / (z - _REACH) + 2.0
        gaps = [uv[0], self.width - uv[0], uv[1], self.height - uv[1]]
        out = np.array(uv, float)
        side = int(np.argmin(gaps))
        out[side // 2] = -reach if side % 2 == 0 else (self.width, self.height)[side // 2] + reach
        return out


def _finger_track(rng, frames, **key_options) -> np.ndarray:
    times = key_times(rng, frames, gap=(8, 16))
    return smooth_track(times, finger_keys(rng, len(times), **key_options), frames)


def _fingers(rng, frames, right=None, left=None) -> np.ndarray:
    """`(F, 2, 15, 3)` finger tracks, each hand with its own key options."""
    return np.stack([_finger_track(rng, frames, **(opts or {})) for opts in (right, left)], 1)


def _betas(rng: np.random.Generator) -> np.ndarray:
    """`(2, 10)`: one person's two hands (70 %) or two people's."""
    first = np.clip(rng.normal(0.0, 0.8, 10), -2.5, 2.5)
    second = np.clip(rng.normal(0.0, 0.8, 10), -2.5, 2.5) if rng.uniform() < 0.3 else first
    return np.stack([first, second])


# Right / left hand, rest frame -> camera frame: fingers up (-y), palm towards the camera.
_FACING = (np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
           np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))


def facing_rotation(rng: np.random.Generator, slot: int, roll: float = 0.6, tilt: float = 0.2) -> np.ndarray:
    """Axis-angle `(3,)` of a hand held up before the camera, palm or back towards it
    (even odds), rolled about the optical axis by up to ``roll`` and tilted by up to
    ``tilt`` radians."""
    turn = Rotation.from_rotvec([0.0, np.pi * rng.integers(2), 0.0])
    lean = Rotation.from_rotvec(np.r_[rng.uniform(-tilt, tilt, 2), rng.uniform(-roll, roll)])
    return (lean * turn * Rotation.from_matrix(_FACING[slot])).as_rotvec()


#: Viewpoint -> share of sequences (see the module docstring).
VIEWPOINTS = {"third_person": 0.6, "egocentric": 0.4}
_TAIL = 0.1  # share of hands turned uniformly at random


def forearm_direction(rng: np.random.Generator, slot: int, viewpoint: str) -> np.ndarray:
    """Unit `(3,)` wrist -> elbow, camera frame (the module docstring's distribution)."""
    if viewpoint == "third_person":
        turn, depth = rng.normal(np.radians(25), np.radians(45)), rng.uniform(np.radians(-20), np.radians(60))
        outward = -1.0 if slot == RIGHT else 1.0
    else:
        turn, depth = rng.normal(np.radians(15), np.radians(30)), rng.uniform(np.radians(-70), np.radians(-20))
        outward = 1.0 if slot == RIGHT else -1.0
    turn = np.clip(turn, -np.radians(160), np.radians(160))
    return np.array([outward * np.sin(turn) * np.cos(depth), np.cos(turn) * np.cos(depth), np.sin(depth)])


_MIN_ELBOW = np.radians(35)  # the elbow flexes at most 145 deg


def upper_arm_direction(rng: np.random.Generator, slot: int, viewpoint: str, forearm: np.ndarray) -> np.ndarray:
    """Unit `(3,)` elbow -> shoulder, camera frame, for a forearm along ``forearm``
    (wrist -> elbow): up in the image and turned outwards by N(15 deg, 25 deg), and away
    from the camera by 30-75 deg in third person (back to the body behind the hands);
    egocentric, outwards (N(80 deg, 25 deg) from up) and 30-70 deg towards the camera (the
    shoulder below and beside the head).
    Kept at least 35 deg from the way back to the wrist."""
    if viewpoint == "third_person":
        turn, depth = rng.normal(np.radians(15), np.radians(25)), rng.uniform(np.radians(30), np.radians(75))
        outward = -1.0 if slot == RIGHT else 1.0
    else:
        turn, depth = rng.normal(np.radians(80), np.radians(25)), rng.uniform(np.radians(-70), np.radians(-30))
        outward = 1.0 if slot == RIGHT else -1.0
    up = np.array([outward * np.sin(turn) * np.cos(depth), -np.cos(turn) * np.cos(depth), np.sin(depth)])
    return limit_elbow(up, forearm)


def limit_elbow(upper: np.ndarray, forearm: np.ndarray) -> np.ndarray:
    """The unit elbow -> shoulder ``upper`` `(3,)`, turned (in the plane it makes with the
    forearm) to at least 35 deg from the way back to the wrist when it is nearer."""
    up = np.asarray(upper, float) / np.linalg.norm(upper)
    back = -np.asarray(forearm, float) / np.linalg.norm(forearm)
    if up @ back <= np.cos(_MIN_ELBOW):
        return up
    across = up - (up @ back) * back
    if np.linalg.norm(across) < 1e-9:  # straight back along the forearm: fold it any way
        across = np.cross(back, [0.0, 0.0, 1.0] if abs(back[2]) < 0.9 else [1.0, 0.0, 0.0])
    across /= np.linalg.norm(across)
    return np.cos(_MIN_ELBOW) * back + np.sin(_MIN_ELBOW) * across


def held_orientation(rng: np.random.Generator, slot: int, viewpoint: str, bend: np.ndarray) -> np.ndarray:
    """Axis-angle `(3,)` of a hand held as people hold them: its forearm along
    :func:`forearm_direction`, rolled uniformly about its axis, then the wrist ``bend``."""
    side = _SIDES[slot]
    arm = forearm_direction(rng, slot, viewpoint)
    align, _ = Rotation.align_vectors(arm[None], REST_AXIS[side][None])
    roll = Rotation.from_rotvec(arm * rng.uniform(0, 2 * np.pi))
    return (roll * align * wrist_rotation(side, bend)).as_rotvec()


def wrist_bends(rng: np.random.Generator) -> np.ndarray:
    """`(2, 2)` flexion and deviation of each hand's wrist, radians."""
    flex = np.clip(rng.normal(0.0, np.radians(25), 2), -np.radians(70), np.radians(70))
    dev = np.clip(rng.normal(np.radians(-5), np.radians(10), 2), -np.radians(30), np.radians(20))
    return np.stack([flex, dev], 1)


def _start_orientation(rng, slot: int, view: View) -> np.ndarray:
    """A held hand (:func:`held_orientation`), or one turned anyhow (the tail)."""
    if rng.uniform() < _TAIL:
        return random_rotation(rng)
    return held_orientation(rng, slot, view.viewpoint, view.bends[slot])


def _place(centre: np.ndarray, orient: np.ndarray, local_centre: np.ndarray) -> np.ndarray:
    """Wrist positions `(F, 3)` that put the rest-frame point ``local_centre`` (relative
    to J0) of hands turned by ``orient (F, 3)`` at ``centre (F, 3)``."""
    return centre - Rotation.from_rotvec(orient).apply(local_centre)


def _hand(rng, view: View, slot: int, rest: HandRest, times, uv, sizes, turn=0.5, start=None):
    """A hand whose palm centre follows image keys: wrist `(F, 3)`, orient `(F, 3)`."""
    start = _start_orientation(rng, slot, view) if start is None else start
    orient = rotation_track(times, rotation_walk(rng, start, len(times), turn), view.frames)
    centre = image_track(times, uv, sizes, view.K, view.frames)
    return _place(centre, orient, rest.palm_centre(slot)), orient


def _free_hand(rng, view: View, slot: int, rest: HandRest, size=(0.25, 0.7), u_range=(0.0, 1.0)):
    times = key_times(rng, view.frames)
    uv = view.wander_uv(rng, len(times), u_range=u_range)
    return _hand(rng, view, slot, rest, times, uv, view.wander_size(rng, len(times), *size))


def _window(rng, frames: int) -> tuple[int, int]:
    """Frames ``start..stop-1`` of a hidden spell: 4-10 frames (the whole clip if
    shorter), away from the ends when the clip allows."""
    length = min(frames, int(rng.integers(4, 11)))
    lo, hi = (4, frames - length - 2) if frames >= length + 8 else (0, frames - length)
    start = int(rng.integers(lo, hi + 1))
    return start, start + length


def _motion(scenario, tracks, articulation, betas, present=(True, True), **extra) -> Motion:
    """A Motion from per-slot ``(wrist, orient)`` tracks (None for an absent hand)."""
    present = np.asarray(present, bool)
    frames = articulation.shape[0]
    wrist = np.zeros((frames, 2, 3))
    orient = np.zeros((frames, 2, 3))
    for slot, track in enumerate(tracks):
        if present[slot]:
            wrist[:, slot], orient[:, slot] = track
    return Motion(scenario, present, wrist, orient, articulation * present[None, :, None, None],
                  betas * present[:, None], **extra)


# ---------------------------------------------------------------- the scenarios

def _free(rng, view, rest):
    tracks = [_free_hand(rng, view, slot, rest, size=(0.2, 0.6)) for slot in (RIGHT, LEFT)]
    return _motion("free", tracks, _fingers(rng, view.frames), _betas(rng))


def _single_hand(rng, view, rest):
    slot = int(rng.integers(2))
    tracks = [_free_hand(rng, view, s, rest, size=(0.25, 0.8)) if s == slot else None for s in (RIGHT, LEFT)]
    return _motion("single_hand", tracks, _fingers(rng, view.frames), _betas(rng),
                   present=[s == slot for s in (RIGHT, LEFT)], contact_tolerance=None)


def _far_apart(rng, view, rest):
    """The hands in opposite quarters of the image (palm centres at least half the width
    apart) and at most 0.3 of the short side in size: at least ~0.3 m apart."""
    near_side = rng.integers(2)
    ranges = ((0.0, 0.25), (0.75, 1.0))
    tracks = [_free_hand(rng, view, slot, rest, size=(0.12, 0.3), u_range=ranges[slot ^ near_side])
              for slot in (RIGHT, LEFT)]
    return _motion("far_apart", tracks, _fingers(rng, view.frames), _betas(rng))


def _depth_scaled(rng, view, rest):
    """One hand near (0.45-0.9 of the short side), the other far (0.1-0.2): the image
    sizes differ by 2.25x or more."""
    near = int(rng.integers(2))
    sizes = {near: (0.45, 0.9), 1 - near: (0.1, 0.2)}
    tracks = [_free_hand(rng, view, slot, rest, size=sizes[slot]) for slot in (RIGHT, LEFT)]
    return _motion("depth_scaled", tracks, _fingers(rng, view.frames), _betas(rng))


def _overlap(rng, view, rest):
    """One hand in front of the other along the view, 20-55 % nearer, partly covering it."""
    times = key_times(rng, view.frames)
    n = len(times)
    back = int(rng.integers(2))
    back_uv = view.wander_uv(rng, n, margin=0.25)
    back_size = view.wander_size(rng, n, 0.2, 0.45)
    front_uv = back_uv + rng.uniform(-0.5, 0.5, (n, 2)) * back_size[:, None]
    front_size = back_size / rng.uniform(0.45, 0.8, n)
    keys = {back: (back_uv, back_size), 1 - back: (front_uv, front_size)}
    tracks = [_hand(rng, view, slot, rest, times, *keys[slot]) for slot in (RIGHT, LEFT)]
    return _motion("overlap", tracks, _fingers(rng, view.frames), _betas(rng))


def _template(rng, name: str, rest: HandRest) -> tuple[Rotation, np.ndarray]:
    """The left hand's rotation and wrist offset in the right hand's rest frame, relative
    to the right wrist, for interaction ``name``. The hands start slightly overlapping;
    :func:`separate` brings them to contact."""
    pc_r, pc_l = rest.palm_centre(RIGHT), rest.palm_centre(LEFT)
    if name == "interlock":
        # poses.interlocked: the left turned over (half a turn about x) under the right
        pair = poses.interlocked()["left"]
        return Rotation.from_rotvec(pair["global_orient"]), rest.root[LEFT] + pair["transl"] - rest.root[RIGHT]
    if name == "palms_together":
        # the right's mirror image across a plane just under its palm (which faces -y):
        # the mirrored pose of the mirror model, half a turn about z, y offset twice the gap
        return Rotation.from_rotvec([0.0, 0.0, np.pi]), np.array([0.0, -0.044, 0.0])
    if name in ("crossing", "stacked"):
        # both palms facing -y, the left lying on the right's back (+y) or under its palm
        # (-y), turned about the palm normal; palm centres one over the other
        turn = rng.uniform(1.0, 2.1) * rng.choice([-1, 1]) if name == "crossing" else rng.uniform(-0.5, 0.5)
        rot = Rotation.from_rotvec([0.0, np.pi + turn, 0.0])
        lift = rng.choice([-1.0, 1.0]) * 0.022
        return rot, pc_r + [0.0, lift, 0.0] - rot.apply(pc_l)
    # touching: any relative pose, palm centres 4 cm apart in any direction
    rot = Rotation.from_rotvec(random_rotation(rng))
    d = rng.normal(size=3)
    return rot, pc_r + 0.04 * d / np.linalg.norm(d) - rot.apply(pc_l)


_INTERACTION_FINGERS = {
    "interlock": dict(names=("interlock",), randomness=(0.0, 0.1), random_share=0.0),
    "palms_together": dict(names=("flat", "spread"), randomness=(0.0, 0.1), random_share=0.0),
    "crossing": dict(names=("rest", "relaxed", "spread", "grasp"), randomness=(0.0, 0.3), random_share=0.1),
    "stacked": dict(names=("rest", "relaxed", "spread"), randomness=(0.0, 0.3), random_share=0.1),
    "touching": dict(),
}


# How far (radians) the relative pose of the hands turns from key to key: close contact
# of long flat surfaces (palms) leaves little room before the fingertips collide.
_WOBBLE = {"interlock": 0.08, "palms_together": 0.05, "crossing": 0.1, "stacked": 0.08, "touching": 0.2}


def _interaction(rng, view, rest, name):
    times = key_times(rng, view.frames)
    n = len(times)
    base_rot, base_offset = _template(rng, name, rest)
    # the relation breathes a little; sometimes the hands come together from apart
    rel_rot = np.stack([(_small_rotation(rng, _WOBBLE[name]) * base_rot).as_rotvec() for _ in range(n)])
    rel_offset = base_offset + rng.normal(0.0, 0.004, (n, 3))
    between = base_offset + base_rot.apply(rest.palm_centre(LEFT)) - rest.palm_centre(RIGHT)
    if n > 1 and rng.uniform() < 0.3:
        rel_offset[0] += rng.uniform(0.06, 0.15) * between / max(np.linalg.norm(between), 1e-6)
    rel_rot_t = Rotation.from_rotvec(rotation_track(times, rel_rot, view.frames))
    rel_offset_t = smooth_track(times, rel_offset, view.frames)

    # the pair's centre (midway between the palm centres, right hand's frame) wanders
    pair_centre = rest.palm_centre(RIGHT) + 0.5 * between
    uv, sizes = view.wander_uv(rng, n, margin=0.2), view.wander_size(rng, n, 0.25, 0.55)
    wrist_r, orient_r = _hand(rng, view, RIGHT, rest, times, uv, sizes, turn=0.7)
    wrist_r += Rotation.from_rotvec(orient_r).apply(rest.palm_centre(RIGHT) - pair_centre)
    rot_r = Rotation.from_rotvec(orient_r)
    left = (wrist_r + rot_r.apply(rel_offset_t), (rot_r * rel_rot_t).as_rotvec())

    fingers = _INTERACTION_FINGERS[name]
    articulation = _fingers(rng, view.frames, fingers, fingers)
    if name == "palms_together":  # the same pose on both hands: mirror images
        articulation[:, LEFT] = articulation[:, RIGHT]
    tolerance = 0.004 if name == "interlock" else 0.002
    return _motion(name, [(wrist_r, orient_r), left], articulation, _betas(rng), contact_tolerance=tolerance)


def _occluder_hides(rng, view, rest):
    """Both hands wander; an object passes in front of one and covers it whole for a
    spell (placed by :func:`plan_occluders` once the hands are posed)."""
    tracks = [_free_hand(rng, view, slot, rest, size=(0.2, 0.5)) for slot in (RIGHT, LEFT)]
    start, stop = _window(rng, view.frames)
    hide = {"by": "occluder", "slot": int(rng.integers(2)), "start": start, "stop": stop}
    return _motion("occluder_hides", tracks, _fingers(rng, view.frames), _betas(rng), hide=hide)


def _out_of_frame(rng, view, rest):
    """One hand leaves the image entirely for a spell and (if the clip goes on) returns."""
    slot = int(rng.integers(2))
    start, stop = _window(rng, view.frames)
    last = stop - 1
    free_times = key_times(rng, view.frames)
    # keys well clear of the spell, the first and the last always (the hand starts and
    # ends in view unless the spell reaches that end), and the spell's two ends
    clear = [t for i, t in enumerate(free_times)
             if t < start - 3 or t > last + 3 or (i == 0 < start) or (i == len(free_times) - 1 and last < t)]
    times = np.unique(np.r_[clear, start, last])
    uv = view.wander_uv(rng, len(times))
    sizes = view.wander_size(rng, len(times), 0.2, 0.5)
    hidden = (times >= start) & (times <= last)
    first = int(np.argmax(hidden))
    sizes[hidden] = sizes[first]
    uv[hidden] = view.outside(uv[max(first - 1, 0)], sizes[first])
    tracks = [_hand(rng, view, s, rest, times, uv, sizes) if s == slot else _free_hand(rng, view, s, rest, (0.2, 0.5))
              for s in (RIGHT, LEFT)]
    hide = {"by": "frame", "slot": slot, "start": start, "stop": stop}
    return _motion("out_of_frame", tracks, _fingers(rng, view.frames), _betas(rng), hide=hide)


def _aside(rng) -> tuple[float, float]:
    """An image offset of 0.4-0.8 hand sizes along both axes, random signs."""
    return tuple(rng.uniform(0.4, 0.8) * rng.choice([-1.0, 1.0], 2))


def _hand_hides_hand(rng, view, rest):
    """A near open hand held up to the camera; the other, a fist 2.5-3.5x as deep,
    slides in behind its palm and stays hidden for a spell."""
    front = int(rng.integers(2))
    back = 1 - front
    times = key_times(rng, view.frames)
    n = len(times)
    uv, sizes = view.wander_uv(rng, n, margin=0.3, step=0.1), view.wander_size(rng, n, 0.55, 0.9, 0.1)
    wrist_f, orient_f = _hand(rng, view, front, rest, times, uv, sizes, turn=0.15,
                              start=facing_rotation(rng, front))
    palm = wrist_f + Rotation.from_rotvec(orient_f).apply(rest.palm_centre(front))

    start, stop = _window(rng, view.frames)
    # the fist's image offset from the palm's, in hand sizes: zero while hidden
    offset_keys = {0: _aside(rng), view.frames - 1: _aside(rng), start: (0.0, 0.0), stop - 1: (0.0, 0.0)}
    key_t = np.array(sorted(offset_keys), float)
    offset = smooth_track(key_t, np.array([offset_keys[int(t)] for t in key_t]), view.frames)
    size_px = view.K[0, 0] * HAND_LENGTH / palm[:, 2]
    depth = palm[:, 2] * rng.uniform(2.5, 3.5)
    centre = backproject(project(palm, view.K) + offset * size_px[:, None], depth, view.K)
    b_times = key_times(rng, view.frames)
    orient_b = rotation_track(b_times, rotation_walk(rng, random_rotation(rng), len(b_times), 0.6), view.frames)
    tracks = {front: (wrist_f, orient_f), back: (_place(centre, orient_b, rest.palm_centre(back)), orient_b)}
    hands = {front: dict(names=("rest", "spread"), randomness=(0.0, 0.1), random_share=0.0),
             back: dict(names=("fist",), randomness=(0.0, 0.15), random_share=0.0)}
    hide = {"by": "hand", "slot": back, "start": start, "stop": stop}
    return _motion("hand_hides_hand", [tracks[RIGHT], tracks[LEFT]],
                   _fingers(rng, view.frames, hands[RIGHT], hands[LEFT]), _betas(rng), hide=hide)


_INTERACTIONS = ("interlock", "palms_together", "crossing", "stacked", "touching")

#: Scenario name -> planner ``(rng, view, rest) -> Motion``.
SCENARIOS = {
    **{name: (lambda rng, view, rest, name=name: _interaction(rng, view, rest, name)) for name in _INTERACTIONS},
    "overlap": _overlap,
    "far_apart": _far_apart,
    "depth_scaled": _depth_scaled,
    "single_hand": _single_hand,
    "occluder_hides": _occluder_hides,
    "out_of_frame": _out_of_frame,
    "hand_hides_hand": _hand_hides_hand,
    "free": _free,
}

#: Split name -> scenario weights. ``train`` mixes everything.
#: The seed each split uses unless told otherwise: held-out splits never share the
#: training split's sequences, and every user gets the same evaluation sets.
SPLIT_SEEDS = {"train": 0, "interacting": 1001, "far_and_scaled": 1002, "single_hand": 1003,
               "occluded": 1004}

SPLITS = {
    "interacting": {"interlock": 1, "palms_together": 1, "crossing": 1, "stacked": 1, "touching": 2, "overlap": 1},
    "far_and_scaled": {"far_apart": 1, "depth_scaled": 1},
    "single_hand": {"single_hand": 1},
    "occluded": {"occluder_hides": 1, "out_of_frame": 1, "hand_hides_hand": 1},
    "train": {"interlock": 1, "palms_together": 1, "crossing": 1, "stacked": 1, "touching": 2, "overlap": 1.5,
              "far_apart": 1, "depth_scaled": 1, "single_hand": 2, "occluder_hides": 0.7,
              "out_of_frame": 0.7, "hand_hides_hand": 0.6, "free": 3},
}
_DECOR_CHANCE = {"train": 0.3}  # share of sequences with objects passing in front


def sample_motion(rng: np.random.Generator, split: str, frames: int, K: np.ndarray,
                  image_size: tuple[int, int], rest: HandRest) -> tuple[Motion, int]:
    """Pick a scenario of ``split`` and plan it.

    Args:
        rng: the sequence's motion stream.
        split: a key of :data:`SPLITS`.
        frames: F.
        K: `(3, 3)` intrinsics.
        image_size: ``(W, H)``.
        rest: the hand model's rest geometry.

    Returns:
        the :class:`Motion` and how many decorative objects should cross in front.
    """
    weights = SPLITS[split]
    names = list(weights)
    p = np.array([weights[k] for k in names], float)
    scenario = names[rng.choice(len(names), p=p / p.sum())]
    viewpoint = list(VIEWPOINTS)[rng.choice(len(VIEWPOINTS), p=list(VIEWPOINTS.values()))]
    view = View(K, image_size[0], image_size[1], frames, viewpoint, wrist_bends(rng))
    motion = SCENARIOS[scenario](rng, view, rest)
    motion.wrist_bend, motion.viewpoint = view.bends, viewpoint
    decor = int(rng.integers(1, 3)) if rng.uniform() < _DECOR_CHANCE.get(split, 0.0) else 0
    return motion, decor
