"""The 4DHands network (paper section 3): ViT tokens per hand crop, RAT, SIR, heads, and
the hand model that turns parameters into meshes in the camera frame.

Inputs (one window of ``T`` frames per sample; ``T = 1`` for single images):

- ``crops (B, T, 2, 3, H, W)``: per frame the right hand's crop (index 0) and the left
  hand's (index 1), as they appear in the image (not mirrored), normalised with
  :data:`IMAGE_MEAN` / :data:`IMAGE_STD`. The network mirrors the left crop itself so that
  it looks like a right hand (as the authors' code does), and its relation maps with it.
- ``boxes (B, T, 2, 4)``: ``[cx, cy, sx, sy]`` of each crop in image pixels; the box fills
  the crop exactly, so its aspect should be the crop's (``geometry.crop.fit_aspect``).
- ``present (B, T, 2)`` bool: which hands are there. A missing hand follows the paper's
  section 4.5 convention, applied here so callers need not: its crop becomes the mirrored
  crop of the other hand and its box a far-away copy of the other's box. Its outputs are
  then meaningless and flagged by ``present`` in the prediction.
- ``image_size (B, 2)`` as ``(W, H)``, optional ``focal (B,)`` (default
  ``geometry.camera.default_focal``) and ``principal_point (B, 2)`` (default the image
  centre) in pixels: the full image's pinhole camera, used to place each hand in the
  camera frame.
- for ``fusion="holistic"`` (Table 5's +Cross H) also ``holistic (B, T, 3, H, W)`` and
  ``holistic_box (B, T, 4)``: one crop holding both hands.

The work splits in two so that video can cache: :meth:`FourDHands.encode` gives each
frame's per-hand global feature G (backbone, RAT, spatial fusion, hand decoder: all per
frame), and :meth:`FourDHands.decode` fuses a window of G over time and regresses. A video
computes ``encode`` once per frame and runs ``decode`` on every window that contains it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..geometry.camera import crop_cam_to_full_translation, default_focal, intrinsics, project
from ..hands import load_hand_model
from ..hands.mirror import mirror_rotmats
from .config import ModelConfig
from .heads import HandHead, RelativeHead
from .rat import RelationEmbedding, far_away_box
from .sir import HandDecoder, SpatialFusion, TemporalFusion
from .vit import VIT_PRESETS, ViT

IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


def normalise_crops(crops: Tensor, present: Tensor) -> Tensor:
    """Crops `(..., 3, h, w)` in [0, 1] -> the network's input scale, zero where a hand is
    absent (``present`` `(...)` bool)."""
    mean = crops.new_tensor(IMAGE_MEAN)[:, None, None]
    std = crops.new_tensor(IMAGE_STD)[:, None, None]
    return torch.where(present[..., None, None, None], (crops - mean) / std, 0.0)
CROP_CAMERA_PIXELS = 256.0  # the crop camera's focal of 5000 px refers to 256 crop pixels


@dataclass
class HandsPrediction:
    """What the network predicts for the output frames of each window.

    Hand axis: index 0 is the right hand, 1 the left. Units: metres; pixels for 2D.
    Rotations are absolute (``flat_hand_mean=True``), in each hand's own MANO convention
    (the left hand's are left-hand parameters, already mirrored back).

    frames: `(T_out,)` long, which input frames of the window these are.
    rotmats: `(B, T_out, 2, 16, 3, 3)` global orientation then the 15 finger joints.
    betas: `(B, T_out, 2, 10)`.
    crop_cam: `(B, T_out, 2, 3)` weak-perspective ``[s, tx, ty]`` of each hand's crop
        (normalised crop coordinates: crop pixels from the centre over 128).
    vertices: `(B, T_out, 2, V, 3)`, keypoints `(B, T_out, 2, 21, 3)`: the hand model's
        output with no translation (MANO's frame; OpenPose keypoint order).
    transl: `(B, T_out, 2, 3)` camera-frame translation of each hand from its crop camera.
    v: `(B, T_out, 3)` left wrist minus right wrist, camera frame.
    keypoints_2d: `(B, T_out, 2, 21, 2)` camera keypoints projected into the image.
    present: `(B, T_out, 2)` bool.
    hand_model: the hand model's name.
    """

    frames: Tensor
    rotmats: Tensor
    betas: Tensor
    crop_cam: Tensor
    vertices: Tensor
    keypoints: Tensor
    transl: Tensor
    v: Tensor
    keypoints_2d: Tensor
    present: Tensor
    hand_model: str

    @property
    def camera_vertices(self) -> Tensor:
        """`(B, T_out, 2, V, 3)` vertices in the camera frame."""
        return self.vertices + self.transl[..., None, :]

    @property
    def camera_keypoints(self) -> Tensor:
        """`(B, T_out, 2, 21, 3)` keypoints in the camera frame."""
        return self.keypoints + self.transl[..., None, :]


def _stand_in_boxes(boxes: Tensor, present: Tensor) -> Tensor:
    """Boxes `(B, T, 2, 4)` with each missing hand's replaced by a far-away copy of the
    other hand's (section 4.5), and a missing pair by a unit box (finite, meaningless)."""
    flat = boxes.reshape(-1, 2, 4)
    far = torch.stack([far_away_box(flat[:, 1], "right"), far_away_box(flat[:, 0], "left")],
                      dim=1).reshape(boxes.shape)
    fill = ~present & present.flip(-1)
    boxes = torch.where(fill[..., None], far, boxes)
    unit = boxes.new_tensor([0.0, 0.0, 1.0, 1.0])
    return torch.where((~present & ~present.flip(-1))[..., None], unit, boxes)


def _other_hand_stand_in(crops: Tensor, boxes: Tensor, present: Tensor):
    """Section 4.5: a missing hand sees the other hand's crop mirrored, boxed far away.

    crops `(B, T, 2, 3, H, W)`, boxes `(B, T, 2, 4)`, present `(B, T, 2)` bool."""
    fill = ~present & present.flip(-1)
    crops = torch.where(fill[..., None, None, None], crops.flip(2).flip(-1), crops)
    return crops, _stand_in_boxes(boxes, present)


class FourDHands(nn.Module):
    """The network of one :class:`~fourdhands.model.config.ModelConfig` (see module doc)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        vit = VIT_PRESETS[config.backbone]
        self.backbone = ViT(vit)
        dim = vit.embed_dim
        self.relation = (RelationEmbedding(dim, join=config.rat_join, tau=config.rat_tau)
                         if config.rat else None)
        groups = 1 if config.fusion == "holistic" else 2
        self.spatial = (SpatialFusion(dim, config.fusion_depth, config.fusion_heads, groups)
                        if config.fusion != "none" else None)
        self.hand_decoder = HandDecoder(dim, config.decoder_dim, config.decoder_depth,
                                        config.decoder_heads)
        self.temporal = (TemporalFusion(config.decoder_dim, config.temporal_depth,
                                        config.temporal_heads) if config.temporal else None)
        self.hand_head = HandHead(config.decoder_dim)
        self.relative_head = RelativeHead(config.decoder_dim) if config.v_from == "head" else None
        # device=None: built wherever the network is (the meta device too, for profiling)
        self.right_model = load_hand_model(config.hand_model, "right", device=None)
        self.left_model = load_hand_model(config.hand_model, "left", device=None)
        # the left crop is mirrored unless one holistic crop shows both hands as they are
        self.mirror_left = config.fusion != "holistic"

    # ------------------------------------------------------------------ per frame
    def encode(self, crops: Tensor, boxes: Tensor, present: Tensor | None = None,
               holistic: Tensor | None = None) -> Tensor:
        """Per-frame global features G `(B, T, 2, D)` (module docstring for the inputs)."""
        b, t = crops.shape[:2]
        if present is None:
            present = torch.ones(b, t, 2, dtype=torch.bool, device=crops.device)
        if self.config.fusion == "holistic":
            if holistic is None:
                raise ValueError("fusion='holistic' needs the holistic crop")
            tokens = self.backbone(holistic.flatten(0, 1))  # (BT, h, w, C)
            tokens = self.spatial(tokens.flatten(1, 2)[:, None])  # (BT, 1, L, C)
            return self.hand_decoder(tokens.expand(-1, 2, -1, -1)).reshape(b, t, 2, -1)

        crops, boxes = _other_hand_stand_in(crops, boxes, present)
        crops = torch.stack([crops[:, :, 0], crops[:, :, 1].flip(-1)], dim=2)
        tokens = self.backbone(crops.flatten(0, 2))  # (BT2, h, w, C)
        tokens = tokens.reshape(b * t, 2, *tokens.shape[1:])
        if self.relation is not None:
            box = boxes.flatten(0, 1)
            right, left = self.relation(tokens[:, 0], tokens[:, 1], box[:, 0], box[:, 1],
                                        mirror_left=True)
            tokens = torch.stack([right, left], dim=1)
        tokens = tokens.flatten(2, 3)  # (BT, 2, L, C)
        if self.spatial is not None:
            tokens = self.spatial(tokens)
        return self.hand_decoder(tokens).reshape(b, t, 2, -1)

    # ------------------------------------------------------------------ per window
    def output_frames(self, t: int) -> Tensor:
        """Frames a window of ``t`` predicts by default: its centre with temporal fusion,
        all of them without."""
        if self.temporal is not None:
            return torch.tensor([t // 2])
        return torch.arange(t)

    def decode(self, features: Tensor, boxes: Tensor, image_size: Tensor,
               focal: Tensor | None = None, present: Tensor | None = None,
               frames: Tensor | None = None, holistic_box: Tensor | None = None,
               principal_point: Tensor | None = None) -> HandsPrediction:
        """Fuse a window of G over time and regress (module docstring for the inputs).

        Args:
            features: `(B, T, 2, D)` from :meth:`encode`.
            frames: `(T_out,)` frames to predict; default :meth:`output_frames`.
        """
        b, t = features.shape[:2]
        device = features.device
        frames = (self.output_frames(t) if frames is None else frames).to(device)
        if present is None:
            present = torch.ones(b, t, 2, dtype=torch.bool, device=device)
        boxes = _stand_in_boxes(boxes, present)
        if self.temporal is not None:
            window = self.config.seq_len
            if t == 1:  # a single frame is its feature repeated T times (section 3.3)
                features, frames = features.expand(-1, window, -1, -1), torch.tensor([window // 2], device=device)
            fused = self.temporal(features, frames)
            source = torch.zeros_like(frames) if t == 1 else frames
        else:
            fused, source = features[:, frames], frames
        params = self.hand_head(fused)
        rotmats, crop_cam = params.rotmats, params.crop_cam
        if self.mirror_left:
            rotmats = torch.stack([rotmats[:, :, 0], mirror_rotmats(rotmats[:, :, 1])], dim=2)
            crop_cam = torch.stack([crop_cam[:, :, 0], crop_cam[:, :, 1] * crop_cam.new_tensor([1.0, -1.0, 1.0])], dim=2)

        outputs = [model(rotmats=rotmats[:, :, h].flatten(0, 1), betas=params.betas[:, :, h].flatten(0, 1))
                   for h, model in enumerate((self.right_model, self.left_model))]
        vertices = torch.stack([o.vertices for o in outputs], 1).unflatten(0, (b, len(frames)))
        keypoints = torch.stack([o.keypoints for o in outputs], 1).unflatten(0, (b, len(frames)))

        # each hand's crop camera, from its own box (or the one holistic box)
        if self.config.fusion == "holistic":
            if holistic_box is None:
                raise ValueError("fusion='holistic' needs the holistic box")
            box = holistic_box[:, source, None].expand(-1, -1, 2, -1)
        else:
            box = boxes[:, source]
        size = image_size.to(crop_cam)
        f = default_focal(size) if focal is None else focal.to(crop_cam)
        pp = size / 2 if principal_point is None else principal_point.to(crop_cam)
        crop_h = self.config.image_size[0]
        transl = crop_cam_to_full_translation(
            crop_cam, box[..., :2], box[..., 3] * CROP_CAMERA_PIXELS / crop_h, size[:, None, None],
            f[:, None, None], pp[:, None, None])
        cam_kp = keypoints + transl[..., None, :]
        if self.relative_head is not None:
            v = self.relative_head(fused)
        else:
            v = cam_kp[:, :, 1, 0] - cam_kp[:, :, 0, 0]
        K = intrinsics(f, pp)[:, None, None]
        return HandsPrediction(
            frames=source, rotmats=rotmats, betas=params.betas, crop_cam=crop_cam,
            vertices=vertices, keypoints=keypoints, transl=transl, v=v,
            keypoints_2d=project(cam_kp, K), present=present[:, source],
            hand_model=self.right_model.name)

    def forward(self, crops: Tensor, boxes: Tensor, image_size: Tensor, focal: Tensor | None = None,
                present: Tensor | None = None, frames: Tensor | None = None,
                holistic: Tensor | None = None, holistic_box: Tensor | None = None,
                principal_point: Tensor | None = None) -> HandsPrediction:
        """Encode every frame of the window, then decode it (module docstring)."""
        features = self.encode(crops, boxes, present, holistic)
        return self.decode(features, boxes, image_size, focal, present, frames, holistic_box,
                           principal_point)
