"""The training sample: what every dataset yields and the network and losses consume.

A sample is one window of ``T`` frames of one sequence, as a dict of tensors. Hand axis:
index 0 is the right hand, 1 the left. Metres, the OpenCV camera frame, image pixels
(continuous coordinates, pixel centres at +0.5) for 2D.

Network inputs
    ``crops (T, 2, 3, h, w)`` float32: each hand's crop as it appears in the image (not
        mirrored; the network mirrors the left), RGB in [0, 1] (the network normalises);
        zeros for a missing hand (the network applies the paper's section 4.5 stand-in
        itself, for training and inference alike).
    ``boxes (T, 2, 4)``: the crop boxes ``[cx, cy, sx, sy]`` (aspect of the crop), image px.
    ``angles (T, 2)``: each crop's in-plane turn in radians (0 unless ``upright``).
    ``present (T, 2)`` bool.
    ``image_size (2,)`` ``[W, H]``; ``K (3, 3)`` intrinsics; ``focal ()`` = ``K[0, 0]``.

Targets (all frames of the window)
    ``global_orient (T, 2, 3)``, ``hand_pose (T, 2, 45)`` (axis-angle, ``flat_hand_mean``
        True), ``betas (T, 2, 10)``, ``transl (T, 2, 3)``: MANO parameters, camera frame.
    ``keypoints_3d (T, 2, 21, 3)`` camera frame, OpenPose order.
    ``keypoints_2d (T, 2, 21, 2)`` image px; ``visible (T, 2, 21)`` bool.
    ``v (T, 3)``: left wrist minus right wrist (valid where both hands are present).
    ``joint_valid (T, 2, 21)`` bool: which keypoints are annotated (all for synthetic data;
        a real dataset's invalid joints are never scored).
    ``has_mano (T, 2)`` bool: whether the MANO parameters above are ground truth, per frame
        and hand (a real dataset's fits are, under a MANO hand model,
        :func:`~fourdhands.hands.mano_fit.fit_to_camera`; otherwise it carries zeros there).

Bookkeeping
    ``frames (T,)`` long: the frame indices within the sequence; ``sequence ()`` long.

Augmentation keeps all of this consistent: a horizontal flip mirrors the image and swaps
the hands (mirrored parameters, ``cx -> W - cx``); a rotation turns the image about the
principal point, which is the camera turning about its optical axis, so the 3D targets
rotate exactly with it (square pixels assumed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TARGET_KEYS = ("global_orient", "hand_pose", "betas", "transl", "keypoints_3d",
               "keypoints_2d", "visible", "present", "v")


@dataclass(frozen=True)
class SampleConfig:
    """How windows are cut and augmented.

    crop_hw: crop ``(h, w)``; any size (paper: 256x192).
    seq_len, gap: T frames, ``gap`` frames apart (paper: 9 and 5), reflected at the
        sequence's ends ("bounced", as the authors do); ``seq_len=1`` gives single frames.
    box_expand: context around the tight hand box before fitting the crop's aspect
        (``ModelConfig.box_expand``).
    augment: apply the random augmentations below (training); off gives the plain crops.
    scale_jitter: the crop box's size varies by a factor in ``[1 - s, 1 + s]``.
    shift_jitter: its centre moves by up to this fraction of its size.
    rotation_deg: the image turns about the principal point by up to this angle.
    flip_prob: probability of the horizontal flip (which swaps the hands).
    color_jitter: brightness, contrast and saturation vary by up to this fraction.
    occlusion_prob: probability, per crop, of a random grey rectangle over part of it.
    upright: turn each crop so that the hand's wrist -> middle knuckle points up, the
        direction taken from the 2D keypoints (``ModelConfig.upright``).
    upright_jitter_deg: with ``augment``, the upright angle is off by up to this much, as
        a detector's landmarks would leave it.
    """

    crop_hw: tuple[int, int] = (256, 192)
    seq_len: int = 9
    gap: int = 5
    box_expand: float = 1.3
    augment: bool = False
    scale_jitter: float = 0.15
    shift_jitter: float = 0.1
    rotation_deg: float = 30.0
    flip_prob: float = 0.5
    color_jitter: float = 0.3
    occlusion_prob: float = 0.2
    upright: bool = False
    upright_jitter_deg: float = 15.0


def model_sample_config(model, **fields) -> SampleConfig:
    """The :class:`SampleConfig` of a network with config ``model`` (a
    :class:`~fourdhands.model.config.ModelConfig`): crop size, window length, upright rule
    and box expansion are the model's, the rest (``gap``, augmentation) is ``fields``."""
    return SampleConfig(crop_hw=tuple(model.image_size), seq_len=model.seq_len if model.temporal else 1,
                        upright=model.upright, box_expand=model.box_expand, **fields)


#: The SampleConfig fields that :func:`model_sample_config` takes from the model.
MODEL_FIELDS = ("crop_hw", "seq_len", "upright", "box_expand")


def network_inputs(batch: dict) -> dict:
    """The network's keyword arguments from a (batched) sample (``trunk`` features in
    place of ``crops`` for a feature cache's samples)."""
    return dict(crops=batch.get("crops"), trunk=batch.get("trunk"), boxes=batch["boxes"], angles=batch["angles"],
                image_size=batch["image_size"], focal=batch["focal"], present=batch["present"],
                principal_point=batch["K"][..., :2, 2])


def window_frames(centre: int, num_frames: int, seq_len: int, gap: int) -> np.ndarray:
    """Frame indices of the window around ``centre``: ``(seq_len,)`` int64.

    Offsets ``gap * (k - seq_len // 2)``, reflected off the ends of ``[0, num_frames)``
    (a bounce: ... 2 1 0 1 2 ...), so every frame can be a window's centre."""
    offsets = gap * (np.arange(seq_len) - seq_len // 2)
    t = centre + offsets
    if num_frames == 1:
        return np.zeros(seq_len, np.int64)
    period = 2 * (num_frames - 1)
    t = np.mod(t, period)
    return np.where(t < num_frames, t, period - t).astype(np.int64)
