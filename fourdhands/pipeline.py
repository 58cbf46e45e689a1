"""Frames with tracked hand boxes -> both hands in 4D, streaming.

:class:`Reconstructor` receives frames one at a time, each with the tracked right and left
hand (a tight box and a score, or nothing), and returns camera-space results frame by
frame, in order, as soon as each frame's temporal window is complete. The paper's
recipe (section 3.3) with the cache that makes video cheap:

- crops: each hand's tight box, expanded by the model's ``box_expand`` (``ModelConfig``, as in training) and fitted to
  the crop's aspect (exactly what the training samples saw, without augmentation); for an
  ``upright`` network turned so that the wrist -> middle knuckle of the detector's
  landmarks points up (unturned when a hand comes without landmarks);
- every frame is *encoded once* (backbone, RAT, spatial fusion and hand decoder:
  :meth:`FourDHands.encode`, ``batch_frames`` frames per backbone call) and its global
  features G are reused by each of the T windows that contain it;
- the window of output frame ``t`` is ``t + gap * (k - T // 2)``, reflected at the ends of
  the video like the training windows (:func:`~fourdhands.data.sample.window_frames`), so
  a frame is output once the frame ``gap * (T // 2)`` later has been encoded (or the video
  has ended); memory holds about ``2 gap (T // 2) + batch_frames`` frames' features,
  however long the video;
- a frame where neither hand was found is not encoded; inside another frame's window it
  contributes that frame's (the centre's) features instead;
- a hand missing in the output frame gets no result (nothing is invented); missing in
  other frames of the window, it follows the network's section 4.5 stand-in.

Camera space. The image's pinhole camera is the focal length given (``--focal``, EXIF),
else :func:`~fourdhands.geometry.camera.field_of_view_focal` (a 53 degree diagonal field
of view), with the principal point given or at the image centre. Each hand's translation comes either from its crop camera
(:func:`~fourdhands.geometry.camera.crop_cam_to_full_translation`, PROTOCOLS.md, or for a
``crop_frame`` network the exact turn of :mod:`~fourdhands.geometry.crop_frame`;
``translation="crop"``) or by PnP of its 3D keypoints against where its crop camera sees
them (:func:`~fourdhands.geometry.pnp.solve_translation`, the authors' released code,
``translation="pnp"``); ``benchmarks/bench_translation.py`` compares the two on synthetic
ground truth. With both hands present, v then sets the two hands' depths: each hand
slides along its wrist's camera ray (so where it appears in the image, which its crop
camera gets right, does not move) to the depths that bring the wrists' difference closest
to v, held softly near the crop cameras' depths
(:func:`~fourdhands.geometry.camera.depths_from_v`). Moving the wrists
freely to match v exactly (the earlier rule) shifted well-placed hands sideways by half
of v's error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from PIL import Image

from .data.augment import crop_boxes
from .data.sample import window_frames
from .errors import UserError
from .geometry.camera import crop_camera_box_size, crop_camera_pixels, depths_from_v, field_of_view_focal, intrinsics, project
from .geometry.crop import box_to_crop_affine, crop_image
from .geometry.crop_frame import upright_angle
from .geometry.pnp import solve_translation
from .geometry.rotations import matrix_to_axis_angle
from .model.network import FourDHands
from .sides import SIDES

TRANSLATIONS = ("crop", "pnp")


@dataclass(frozen=True)
class TrackedHand:
    """A hand the tracker assigned to a side: tight box ``[cx, cy, sx, sy]`` (image px),
    the detector's score and, when it has them, its 21 landmarks `(21, 2)` (image px,
    OpenPose order), which turn an ``upright`` network's crop."""

    box: tuple[float, float, float, float]
    score: float = 1.0
    landmarks: np.ndarray | None = None

    def angle(self) -> float:
        """The upright crop angle from the landmarks (radians), 0 without them."""
        if self.landmarks is None:
            return 0.0
        kp = torch.as_tensor(np.asarray(self.landmarks, float))
        return float(upright_angle(kp[0], kp[9]))


@dataclass
class HandResult:
    """One hand in one frame, camera frame (OpenCV axes), metres and image pixels.

    global_orient `(3,)`, hand_pose `(45,)` axis-angle (``flat_hand_mean`` True),
    betas `(10,)`, transl `(3,)` (vertices = model output + transl), keypoints_3d
    `(21, 3)`, keypoints_2d `(21, 2)`, vertices `(V, 3)`, box `(4,)` the tracked tight box,
    crop_box `(4,)` the box the network saw, score the detector's."""

    global_orient: np.ndarray
    hand_pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    keypoints_3d: np.ndarray
    keypoints_2d: np.ndarray
    vertices: np.ndarray
    box: np.ndarray
    crop_box: np.ndarray
    score: float


@dataclass
class FrameResult:
    """Everything found in one frame: the hands present (by side) and, with both, ``v``
    `(3,)` = left wrist - right wrist; ``K`` `(3, 3)` the camera used."""

    index: int
    image_size: tuple[int, int]
    K: np.ndarray
    hands: dict[str, HandResult] = field(default_factory=dict)
    v: np.ndarray | None = None


@dataclass
class _Entry:
    image_size: tuple[int, int]
    focal: float
    principal_point: tuple[float, float]
    hands: tuple[TrackedHand | None, TrackedHand | None]
    crop_boxes: np.ndarray  # (2, 4)
    angles: np.ndarray  # (2,) crop angles, radians
    crops: torch.Tensor | None = None  # (2, 3, h, w) until encoded
    features: torch.Tensor | None = None  # (2, D)

    @property
    def present(self) -> np.ndarray:
        return np.array([h is not None for h in self.hands])


def prepare_crops(image: np.ndarray, boxes: np.ndarray, present: np.ndarray,
                  crop_hw: tuple[int, int], box_expand: float, angles: np.ndarray | None = None
                  ) -> tuple[torch.Tensor, np.ndarray]:
    """The network's inputs for one frame.

    image `(H, W, 3)` uint8; boxes `(2, 4)` tight boxes; present `(2,)` bool; angles `(2,)`
    crop turns (radians, default 0) -> crops `(2, 3, h, w)` RGB in [0, 1] (zeros where
    absent), crop boxes `(2, 4)`.

    Only each crop's own region of the image is converted and resampled, and a region
    much larger than the crop is first shrunk by an integer factor with a box filter
    (PIL ``reduce``, which maps continuous coordinates exactly by that factor), so a big
    hand in a 4K frame is averaged rather than aliased, and costs what a small one does.
    """
    h, w = crop_hw
    angles = np.zeros(2) if angles is None else np.asarray(angles, float)
    cboxes = crop_boxes(boxes, present, crop_hw, box_expand)
    crops = torch.zeros(2, 3, h, w)
    height, width = image.shape[:2]
    for k in np.flatnonzero(present):
        cx, cy, sx, sy = cboxes[k]
        c, s = abs(np.cos(angles[k])), abs(np.sin(angles[k]))
        ex, ey = (c * sx + s * sy) / 2, (s * sx + c * sy) / 2  # half extents of the turned box
        x0, x1 = max(0, int(np.floor(cx - ex)) - 1), min(width, int(np.ceil(cx + ex)) + 1)
        y0, y1 = max(0, int(np.floor(cy - ey)) - 1), min(height, int(np.ceil(cy + ey)) + 1)
        if x1 <= x0 or y1 <= y0:  # the box lies wholly outside the image
            continue
        region = image[y0:y1, x0:x1]
        factor = max(1, int(sy / h))
        if factor > 1:
            region = np.asarray(Image.fromarray(np.ascontiguousarray(region)).reduce(factor))
        local = np.array([(cx - x0) / factor, (cy - y0) / factor, sx / factor, sy / factor])
        affine = box_to_crop_affine(torch.as_tensor(local), crop_hw, rotation=float(angles[k])).float()
        pixels = torch.tensor(region).permute(2, 0, 1).float() / 255.0  # a copy: PIL arrays are read-only
        crops[k] = crop_image(pixels, affine, crop_hw)
    return crops, cboxes


class Reconstructor:
    """Streaming inference with cached per-frame features (module docstring).

    Args:
        net: the network (eval mode).
        gap: frames between the window's frames (the training's gap fits best).
        translation: ``"crop"`` or ``"pnp"``.
        batch_frames: frames per backbone call.
        needed: optional predicate on a frame index: whether its result is wanted (a
            resumed run skips frames already written; frames only other windows need are
            still encoded).
    """

    def __init__(self, net: FourDHands, gap: int, translation: str = "crop", batch_frames: int = 8, needed=None):
        if translation not in TRANSLATIONS:
            raise ValueError(f"translation must be one of {TRANSLATIONS}, got {translation!r}")
        if translation == "pnp" and net.config.crop_frame:
            raise UserError("--translation pnp: this network places hands through each crop's own "
                            "camera frame, which is already perspective-exact; use --translation crop")
        self.net, self.translation = net, translation
        self.window = net.config.seq_len if net.config.temporal else 1
        self.gap = max(1, int(gap))
        self.reach = self.gap * (self.window // 2)
        self.batch_frames = batch_frames
        self.needed = needed or (lambda index: True)
        self.device = next(net.parameters()).device
        self.entries: dict[int, _Entry] = {}
        self.seen = 0  # frames pushed
        self.encoded = 0  # frames before this one are encoded (or need no encoding)
        self.next_out = 0  # first frame not yet output
        self.timings = {"crops": 0.0, "backbone": 0.0, "fusion": 0.0}

    # ------------------------------------------------------------------ input
    def push(self, image: np.ndarray, hands: tuple[TrackedHand | None, TrackedHand | None],
             focal: float | None = None, principal_point: tuple[float, float] | None = None
             ) -> list[FrameResult | None]:
        """Add the next frame `(H, W, 3)` uint8 RGB and its tracked (right, left) hands,
        with the camera's focal length and principal point in pixels (defaults: see the
        module docstring). Returns the frames that became complete, in order (``None`` for
        a frame whose result is not ``needed``)."""
        index = self.seen
        self.seen += 1
        # a box of no size (a hand hidden behind the other) gives no crop: no hand there
        hands = tuple(hand if hand is not None and np.all(np.isfinite(hand.box)) and min(hand.box[2:]) > 0 else None
                      for hand in hands)
        h, w = image.shape[:2]
        f = float(field_of_view_focal(torch.tensor([w, h], dtype=torch.float64))) if focal is None else float(focal)
        boxes = np.array([hand.box if hand is not None else (0.0, 0.0, 0.0, 0.0) for hand in hands], float)
        pp = (w / 2, h / 2) if principal_point is None else tuple(map(float, principal_point))
        angles = np.array([hand.angle() if hand is not None and self.net.config.upright else 0.0
                           for hand in hands])
        entry = _Entry((w, h), f, pp, tuple(hands), np.zeros((2, 4)), angles)
        if entry.present.any() and self._in_reach(index):
            t0 = time.perf_counter()
            entry.crops, entry.crop_boxes = prepare_crops(image, boxes, entry.present,
                                                          tuple(self.net.config.image_size), self.net.config.box_expand,
                                                          angles)
            self.timings["crops"] += time.perf_counter() - t0
        self.entries[index] = entry
        if sum(e.crops is not None for e in self.entries.values()) >= self.batch_frames:
            self._encode()
        return self._drain(final=False)

    def finish(self) -> list[FrameResult | None]:
        """The remaining frames, once the input has ended."""
        self._encode()
        return self._drain(final=True)

    # ------------------------------------------------------------------ internals
    def _in_reach(self, index: int) -> bool:
        """Whether a wanted frame's window can contain ``index`` (a reflected frame is
        never farther from its window's centre than the frame it replaces)."""
        return any(self.needed(t) for t in range(max(0, index - self.reach), index + self.reach + 1))

    @torch.no_grad()
    def _encode(self) -> None:
        todo = [i for i, e in self.entries.items() if e.crops is not None]
        self.encoded = self.seen
        if not todo:
            return
        t0 = time.perf_counter()
        crops = torch.stack([self.entries[i].crops for i in todo])[None].to(self.device)
        boxes = torch.as_tensor(np.stack([self.entries[i].crop_boxes for i in todo]), dtype=torch.float32)
        present = torch.as_tensor(np.stack([self.entries[i].present for i in todo]))
        angles = torch.as_tensor(np.stack([self.entries[i].angles for i in todo]), dtype=torch.float32)
        features = self.net.encode(crops, boxes[None].to(self.device), present[None].to(self.device),
                                   angles=angles[None].to(self.device))[0]
        for k, i in enumerate(todo):
            self.entries[i].features, self.entries[i].crops = features[k], None
        self.timings["backbone"] += time.perf_counter() - t0

    def _drain(self, final: bool) -> list[FrameResult | None]:
        out = []
        while self.next_out < self.seen and (final or self.next_out + self.reach < self.encoded):
            t = self.next_out
            if self.needed(t) and self.entries[t].present.any():
                out.append(self._decode(t))
            else:
                out.append(None if not self.needed(t) else self._empty(t))
            self.next_out += 1
            for old in [i for i in self.entries if i < self.next_out - self.reach]:
                del self.entries[old]
        return out

    def _empty(self, t: int) -> FrameResult:
        e = self.entries[t]
        return FrameResult(t, e.image_size, _camera(e).numpy())

    @torch.no_grad()
    def _decode(self, t: int) -> FrameResult:
        t0 = time.perf_counter()
        centre = self.entries[t]
        frames = window_frames(t, self.seen, self.window, self.gap)
        window = [self.entries[int(i)] if self.entries[int(i)].features is not None else centre for i in frames]
        dev = self.device
        features = torch.stack([e.features for e in window])[None]
        boxes = torch.as_tensor(np.stack([e.crop_boxes for e in window]), dtype=torch.float32, device=dev)[None]
        present = torch.as_tensor(np.stack([e.present for e in window]), device=dev)[None]
        angles = torch.as_tensor(np.stack([e.angles for e in window]), dtype=torch.float32, device=dev)[None]
        size = torch.tensor([centre.image_size], dtype=torch.float32, device=dev)
        focal = torch.tensor([centre.focal], dtype=torch.float32, device=dev)
        pp = torch.tensor([centre.principal_point], dtype=torch.float32, device=dev)
        pred = self.net.decode(features, boxes, size, focal, present, principal_point=pp, angles=angles)
        transl = pred.transl[0, 0].double().cpu()  # (2, 3)
        keypoints = pred.keypoints[0, 0].double().cpu()  # (2, 21, 3), no translation
        K = _camera(centre)
        present_now = centre.present
        if self.translation == "pnp":
            box = torch.as_tensor(centre.crop_boxes)
            pixels = crop_camera_pixels(keypoints, pred.crop_cam[0, 0].double().cpu(), box[:, :2],
                                        crop_camera_box_size(box[:, 3], self.net.config.image_size[0]))
            on = torch.as_tensor(present_now)
            transl[on] = solve_translation(keypoints[on], pixels[on], K.expand(int(on.sum()), 3, 3))
        v = pred.v[0, 0].double().cpu()
        if present_now.all():
            roots = keypoints[:, 0] + transl
            depths = depths_from_v(roots, v).clamp_min(0.05)  # never behind or at the camera
            transl = transl + roots * (depths / roots[:, 2] - 1)[:, None]
        vertices = pred.vertices[0, 0].double().cpu() + transl[:, None]
        cam_kp = keypoints + transl[:, None]
        kp2d = project(cam_kp, K)
        axis_angle = matrix_to_axis_angle(pred.rotmats[0, 0].double().cpu())  # (2, 16, 3)
        betas = pred.betas[0, 0].double().cpu()
        placed_v = (cam_kp[1, 0] - cam_kp[0, 0]).numpy()  # v as the placed hands give it
        result = FrameResult(t, centre.image_size, K.numpy(), v=placed_v if present_now.all() else None)
        for h, side in enumerate(SIDES):
            hand = centre.hands[h]
            if hand is None:
                continue
            result.hands[side] = HandResult(
                global_orient=axis_angle[h, 0].numpy(), hand_pose=axis_angle[h, 1:].reshape(-1).numpy(),
                betas=betas[h].numpy(), transl=transl[h].numpy(), keypoints_3d=cam_kp[h].numpy(),
                keypoints_2d=kp2d[h].numpy(), vertices=vertices[h].numpy(),
                box=np.asarray(hand.box, float), crop_box=centre.crop_boxes[h].copy(), score=float(hand.score))
        self.timings["fusion"] += time.perf_counter() - t0
        return result


def _camera(entry: _Entry) -> torch.Tensor:
    return intrinsics(torch.tensor(entry.focal, dtype=torch.float64),
                      torch.tensor(entry.principal_point, dtype=torch.float64))
