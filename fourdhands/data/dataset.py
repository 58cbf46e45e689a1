"""Windows of hand sequences as training samples (schema: :mod:`fourdhands.data.sample`).

:class:`HandWindows` turns any *sequence source* into a map-style ``torch`` Dataset with
one item per (sequence, centre frame). A source is anything with ``len(source)`` and
``source[i]`` giving an object with ``.gt`` (the arrays of the synthetic format, frames
first: ``present``, ``global_orient``, ``hand_pose``, ``betas``, ``transl``,
``keypoints_3d``, ``keypoints_2d``, ``visible``, ``boxes``, ``K``, ``image_size``),
``.num_frames`` and ``.frame(t)`` (uint8 `(H, W, 3)`), optionally ``joint_valid`` (the
annotated keypoints, default all) and ``has_mano`` (default True); the synthetic shards
(:class:`fourdhands.synth.shards.SyntheticSequences`) and real datasets
(:mod:`fourdhands.data.sources`) plug in the same way. Single images are sequences of one frame: their windows
repeat the frame T times.

Randomness: :meth:`HandWindows.sample` ``(i, draw)`` takes its augmentation from a
generator seeded with ``(seed, draw, i)``; ``dataset[i]`` uses the current epoch as the
draw (:meth:`HandWindows.set_epoch`). A run is therefore reproducible whatever the number
of workers or the order of loading, and a trainer that numbers its draws (e.g. by step)
can resume exactly.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..geometry.crop import crop_image, keypoints_to_box
from ..hands import load_hand_model
from ..hands.mano_fit import fit_to_camera
from .augment import (
    crop_affines,
    crop_boxes,
    flip_window,
    jitter_colour,
    occlude,
    rotate_window,
    upright_angles,
)
from .sample import SampleConfig, window_frames

_WINDOW_KEYS = ("present", "global_orient", "hand_pose", "betas", "transl", "keypoints_3d",
                "keypoints_2d", "visible", "boxes", "v")


class HandWindows(Dataset):
    """Every frame of every sequence of ``source`` as the centre of a T-frame window."""

    def __init__(self, source, config: SampleConfig, seed: int = 0, hand_model: str = "open"):
        self.source = source
        self.config = config
        self.seed = int(seed)
        self.epoch = 0
        self.hand_model = hand_model
        self._models = None  # built lazily: once per worker process
        counts = np.array([source[i].num_frames for i in range(len(source))], np.int64)
        self._starts = np.concatenate([[0], np.cumsum(counts)])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def set_epoch(self, epoch: int) -> None:
        """Draw different augmentations in each epoch (call before iterating)."""
        self.epoch = int(epoch)

    @property
    def models(self):
        if self._models is None:
            self._models = {side: load_hand_model(self.hand_model, side, dtype=torch.float64)
                            for side in ("right", "left")}
        return self._models

    def locate(self, index: int) -> tuple[int, int]:
        """``(sequence, centre frame)`` of item ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        seq = int(np.searchsorted(self._starts, index, side="right") - 1)
        return seq, int(index - self._starts[seq])

    def __getitem__(self, index: int) -> dict:
        return self.sample(index, self.epoch)

    def sample(self, index: int, draw: int, key: tuple | None = None) -> dict:
        """Item ``index`` with the augmentation of draw number ``draw``; ``key`` seeds the
        augmentation instead (e.g. one key for every frame of a sequence, so that they
        share one augmentation, as a feature cache wants)."""
        cfg = self.config
        seq_id, centre = self.locate(index)
        seq = self.source[seq_id]
        frames = window_frames(centre, seq.num_frames, cfg.seq_len, cfg.gap)
        gt = seq.gt
        targets = {k: np.asarray(gt[k][frames], dtype=bool if k in ("present", "visible") else float)
                   for k in _WINDOW_KEYS}
        targets["joint_valid"] = (np.asarray(gt["joint_valid"][frames], bool) if "joint_valid" in gt
                                  else np.ones(targets["visible"].shape, bool))
        has_mano = self._mano_targets(gt, np.asarray(frames), targets)
        K = np.asarray(gt["K"][frames[len(frames) // 2]], float)
        image_size = np.asarray(gt["image_size"], float)
        rng = np.random.default_rng((self.seed, int(draw), int(index)) if key is None else key)
        P = np.eye(3)
        scale, shift = 1.0, (0.0, 0.0)
        if cfg.augment:
            if rng.random() < cfg.flip_prob:
                targets, K, P = flip_window(targets, K, image_size, self.models)
            angle = np.radians(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg))
            if angle:
                targets, rot = rotate_window(targets, K, image_size, angle, self.models)
                P = rot @ P
            scale = 1.0 + rng.uniform(-cfg.scale_jitter, cfg.scale_jitter)
            shift = tuple(rng.uniform(-cfg.shift_jitter, cfg.shift_jitter, 2))
        boxes = crop_boxes(_where_hidden(targets), targets["present"], cfg.crop_hw, cfg.box_expand,
                           scale, shift)
        angles = np.zeros(targets["present"].shape)
        if cfg.upright:
            angles = upright_angles(targets["keypoints_2d"], targets["present"])
            if cfg.augment:  # one error for the window: a detector's is steady over a few frames
                angles = np.where(targets["present"], angles + np.radians(
                    rng.uniform(-cfg.upright_jitter_deg, cfg.upright_jitter_deg, 2)), 0.0)
        affines = crop_affines(boxes, P, cfg.crop_hw, angles).float()  # (T, 2, 2, 3)

        crops = torch.stack([
            crop_image(torch.from_numpy(np.array(seq.frame(int(t)))).permute(2, 0, 1).float() / 255.0,
                       affines[i], cfg.crop_hw)
            for i, t in enumerate(frames)])  # (T, 2, 3, h, w)
        present = torch.as_tensor(targets["present"])
        visible = targets["visible"]
        if cfg.augment:
            crops = jitter_colour(crops, rng, cfg.color_jitter)
            rects = occlude(crops.flatten(0, 1), rng, cfg.occlusion_prob).reshape(*crops.shape[:2], 4)
            box_maps = crop_affines(boxes, np.eye(3), cfg.crop_hw, angles).numpy()  # augmented image -> crop
            visible = visible & ~_under(targets["keypoints_2d"], box_maps, rects)
        crops = torch.where(present[..., None, None, None], crops, 0.0)

        sample = {k: torch.as_tensor(targets[k], dtype=torch.float32)
                  for k in ("global_orient", "hand_pose", "betas", "transl", "keypoints_3d",
                            "keypoints_2d", "v")}
        sample.update(
            crops=crops.float(), boxes=torch.as_tensor(boxes, dtype=torch.float32), present=present,
            angles=torch.as_tensor(angles, dtype=torch.float32),
            visible=torch.as_tensor(visible), image_size=torch.as_tensor(image_size, dtype=torch.float32),
            K=torch.as_tensor(K, dtype=torch.float32), focal=torch.tensor(float(K[0, 0])),
            frames=torch.as_tensor(frames), sequence=torch.tensor(seq_id),
            joint_valid=torch.as_tensor(targets["joint_valid"]),
            has_mano=torch.as_tensor(has_mano))
        return sample

    def _mano_targets(self, gt: dict, frames: np.ndarray, targets: dict) -> np.ndarray:
        """`(T, 2)` which hands' MANO parameters are ground truth. A real dataset's fits
        (:data:`~fourdhands.hands.mano_fit.FIT_KEYS`) mean something only to MANO: under a
        MANO hand model they are converted into ``targets`` (camera frame, flat mean);
        under the open one the dataset is supervised by its keypoints."""
        if self.hand_model == "open" or "fit_valid" not in gt:
            return np.full(targets["present"].shape, bool(gt.get("has_mano", True)))
        valid = np.asarray(gt["fit_valid"][frames], bool) & targets["present"]
        for h, side in enumerate(("right", "left")):
            rows = np.flatnonzero(valid[:, h])
            if len(rows):
                f = frames[rows]
                params = fit_to_camera(self.models[side], gt["fit_pose"][f, h], gt["fit_betas"][f, h],
                                       gt["fit_transl"][f, h], gt["fit_R"][f], gt["fit_t"][f],
                                       bool(gt["fit_mean_relative"]), wrist=targets["keypoints_3d"][rows, h, 0],
                                       pca=bool(gt.get("fit_pca", False)))
                for k, v in params.items():
                    targets[k][rows, h] = v
        return valid


def _where_hidden(targets: dict) -> np.ndarray:
    """Tight boxes `(T, 2, 4)`; a present hand with no visible pixel (hidden or out of
    frame) gets the box of its projected keypoints instead, i.e. the crop a tracker
    would keep looking at, so the network sees the occluder (and must lean on time)."""
    kp = torch.as_tensor(targets["keypoints_2d"])
    fallback = keypoints_to_box(kp, expand=1.0).numpy()
    empty = targets["boxes"][..., 2:].min(-1, keepdims=True) <= 0
    return np.where(empty, fallback, targets["boxes"])


def _under(keypoints_2d: np.ndarray, affines: np.ndarray, rects: np.ndarray) -> np.ndarray:
    """Which keypoints `(T, 2, 21, 2)` (image px) fall in their crop's occluding
    rectangle `(T, 2, 4)` under the crop maps `(T, 2, 2, 3)`: `(T, 2, 21)` bool."""
    p = keypoints_2d @ np.swapaxes(affines[..., :2], -1, -2) + affines[..., None, :, 2]
    r = rects[..., None, :]
    return (p[..., 0] >= r[..., 0]) & (p[..., 0] <= r[..., 2]) & (p[..., 1] >= r[..., 1]) & (p[..., 1] <= r[..., 3])
