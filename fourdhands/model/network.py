"""The 4DHands network (paper section 3): backbone tokens per hand crop, RAT, SIR, heads,
and the hand model that turns parameters into meshes in the camera frame.

Inputs (one window of ``T`` frames per sample; ``T = 1`` for single images):

- ``crops (B, T, 2, 3, H, W)``: per frame the right hand's crop (index 0) and the left
  hand's (index 1), as they appear in the image (not mirrored), RGB in [0, 1]. The
  network normalises them as its backbone expects (:mod:`fourdhands.model.backbones`) and
  mirrors the left crop so that it looks like a right hand (as the authors' code does),
  and its relation maps with it.
- ``angles (B, T, 2)``, optional: each crop's in-plane turn in radians
  (:func:`fourdhands.geometry.crop.box_to_crop_affine`'s ``rotation``; 0 when omitted).
  With ``ModelConfig.crop_frame`` the hand's orientation and crop camera are regressed in
  the crop's own frame (:mod:`fourdhands.geometry.crop_frame`: the camera turned to look
  at the crop's centre, then rolled by its angle) and converted exactly to the camera
  frame, so the targets depend only on what each crop shows.
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
- ``trunk (B, T, 2, ...)``, optional, instead of ``crops``: the backbone's trunk output
  of each hand's *network view* (normalised, the left crop mirrored), as a feature cache
  stores it; see :meth:`FourDHands.network_views`.
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

from ..geometry.camera import (
    crop_cam_to_full_translation,
    crop_camera_box_size,
    crop_cam_to_translation,
    default_focal,
    intrinsics,
    project,
)
from ..geometry.crop_frame import crop_frame_rotation, crop_to_camera
from ..hands import load_hand_model
from ..hands.mirror import mirror_rotmats
from .backbones import backbone_spec
from .config import ModelConfig
from .heads import HandHead, RelativeHead
from .rat import RelationEmbedding, far_away_box
from .sir import HandDecoder, SpatialFusion, TemporalFusion



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


def _stand_in_boxes(boxes: Tensor, angles: Tensor, present: Tensor) -> tuple[Tensor, Tensor]:
    """Boxes `(B, T, 2, 4)` and angles `(B, T, 2)` with each missing hand's replaced by a
    far-away copy of the other hand's, turned as it is (section 4.5), and a missing pair by
    a unit box (finite, meaningless)."""
    flat, turn = boxes.reshape(-1, 2, 4), angles.reshape(-1, 2)
    far = torch.stack([far_away_box(flat[:, 1], "right", angle=turn[:, 1]),
                       far_away_box(flat[:, 0], "left", angle=turn[:, 0])], dim=1).reshape(boxes.shape)
    fill = ~present & present.flip(-1)
    boxes = torch.where(fill[..., None], far, boxes)
    angles = torch.where(fill, angles.flip(-1), angles)
    unit = boxes.new_tensor([0.0, 0.0, 1.0, 1.0])
    return torch.where((~present & ~present.flip(-1))[..., None], unit, boxes), angles


def _other_hand_stand_in(views: Tensor, present: Tensor) -> Tensor:
    """Section 4.5 in the network's view: a missing hand sees the other hand's crop
    mirrored, which, the left crop being mirrored too, is the other hand's network view.

    views `(B, T, 2, ...)` (crops or trunk features), present `(B, T, 2)` bool."""
    fill = (~present & present.flip(-1)).reshape(*present.shape, *([1] * (views.dim() - 3)))
    return torch.where(fill, views.flip(2), views)


class FourDHands(nn.Module):
    """The network of one :class:`~fourdhands.model.config.ModelConfig` (see module doc)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.spec = backbone_spec(config.backbone)
        self.backbone = self.spec.build(tuple(config.image_size))
        dim = config.token_dim or self.spec.width
        self.token_project = nn.Linear(self.spec.width, dim) if dim != self.spec.width else None
        self.relation = (RelationEmbedding(dim, join=config.rat_join, tau=config.rat_tau)
                         if config.rat else None)
        groups = 1 if config.fusion == "holistic" else 2
        self.spatial = (SpatialFusion(dim, config.fusion_depth, config.fusion_heads, groups,
                                      positions=not self.spec.has_pos_embed)
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

    def external_weights(self) -> dict[str, Tensor]:
        """The backbone's weights as they come from outside the checkpoint (a pre-trained
        file read when it is built), by state-dict key; empty for a backbone without."""
        if self.spec.external is None:
            return {}
        fresh = self.spec.build(tuple(self.config.image_size)).state_dict()
        return {f"backbone.{k}": v for k, v in fresh.items() if k.startswith(self.spec.external)}

    # ------------------------------------------------------------------ per frame
    def _normalise(self, crops: Tensor) -> Tensor:
        mean = crops.new_tensor(self.spec.mean)[:, None, None]
        std = crops.new_tensor(self.spec.std)[:, None, None]
        return (crops - mean) / std

    def network_views(self, crops: Tensor) -> Tensor:
        """Crops `(..., 2, 3, H, W)` in [0, 1] (right, left as in the image) -> what the
        backbone sees: normalised, the left crop mirrored."""
        views = self._normalise(crops)
        return torch.stack([views[..., 0, :, :, :], views[..., 1, :, :, :].flip(-1)], dim=-4)

    def trunk(self, views: Tensor) -> Tensor:
        """Network views `(..., 3, H, W)` -> the backbone's trunk output (what a feature
        cache stores)."""
        lead = views.shape[:-3]
        out = self.backbone.trunk(views.flatten(0, -4))
        return out.reshape(*lead, *out.shape[1:])

    def _tokens(self, trunk: Tensor) -> Tensor:
        """Trunk outputs `(N, ...)` -> tokens `(N, h, w, D)`."""
        tokens = self.backbone.head(trunk)
        return tokens if self.token_project is None else self.token_project(tokens)

    def encode(self, crops: Tensor | None, boxes: Tensor, present: Tensor | None = None,
               holistic: Tensor | None = None, angles: Tensor | None = None,
               trunk: Tensor | None = None) -> Tensor:
        """Per-frame global features G `(B, T, 2, D)` (module docstring for the inputs;
        ``trunk`` replaces ``crops``)."""
        b, t = boxes.shape[:2]
        if present is None:
            present = torch.ones(b, t, 2, dtype=torch.bool, device=boxes.device)
        if self.config.fusion == "holistic":
            if holistic is None:
                raise ValueError("fusion='holistic' needs the holistic crop")
            tokens = self._tokens(self.backbone.trunk(self._normalise(holistic).flatten(0, 1)))  # (BT, h, w, C)
            tokens = self.spatial(tokens.flatten(1, 2)[:, None], tuple(tokens.shape[1:3]))  # (BT, 1, L, C)
            return self.hand_decoder(tokens.expand(-1, 2, -1, -1)).reshape(b, t, 2, -1)

        if trunk is None:
            trunk = self.trunk(self.network_views(crops))
        trunk = _other_hand_stand_in(trunk, present)
        angles = boxes.new_zeros(b, t, 2) if angles is None else angles
        boxes, angles = _stand_in_boxes(boxes, angles, present)
        tokens = self._tokens(trunk.flatten(0, 2))  # (BT2, h, w, C)
        tokens = tokens.reshape(b * t, 2, *tokens.shape[1:])
        if self.relation is not None:
            box, turn = boxes.flatten(0, 1), angles.flatten(0, 1)
            right, left = self.relation(tokens[:, 0], tokens[:, 1], box[:, 0], box[:, 1],
                                        mirror_left=True, angles=turn)
            tokens = torch.stack([right, left], dim=1)
        grid = tuple(tokens.shape[2:4])
        tokens = tokens.flatten(2, 3)  # (BT, 2, L, C)
        if self.spatial is not None:
            tokens = self.spatial(tokens, grid)
        return self.hand_decoder(tokens).reshape(b, t, 2, -1)

    # ------------------------------------------------------------------ per window
    def output_frames(self, t: int) -> Tensor:
        """Frames a window of ``t`` predicts by default: its centre with temporal fusion,
        all of them without."""
        if self.temporal is not None:
            return torch.tensor([t // 2])
        return torch.arange(t)

    def _fuse(self, features: Tensor, frames: Tensor) -> tuple[Tensor, Tensor]:
        """G* of the output ``frames`` `(B, T_out, 2, D)` (temporal fusion, or the frames'
        own G without it), and the input frame each came from `(T_out,)`."""
        if self.temporal is None:
            return features[:, frames], frames
        t, window = features.shape[1], self.config.seq_len
        if t == 1:  # a single frame is its feature repeated T times (section 3.3)
            features, frames = features.expand(-1, window, -1, -1), torch.tensor([window // 2], device=features.device)
        return self.temporal(features, frames), (torch.zeros_like(frames) if t == 1 else frames)

    def _crop_boxes(self, boxes: Tensor, angles: Tensor, holistic_box: Tensor | None,
                    source: Tensor) -> tuple[Tensor, Tensor]:
        """Each hand's crop box `(B, T_out, 2, 4)` and turn `(B, T_out, 2)` for its crop
        camera: its own, or the one holistic box (unturned)."""
        if self.config.fusion != "holistic":
            return boxes[:, source], angles[:, source]
        if holistic_box is None:
            raise ValueError("fusion='holistic' needs the holistic box")
        box = holistic_box[:, source, None].expand(-1, -1, 2, -1)
        return box, torch.zeros_like(box[..., 0])

    def decode(self, features: Tensor, boxes: Tensor, image_size: Tensor,
               focal: Tensor | None = None, present: Tensor | None = None,
               frames: Tensor | None = None, holistic_box: Tensor | None = None,
               principal_point: Tensor | None = None, angles: Tensor | None = None) -> HandsPrediction:
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
        angles = boxes.new_zeros(b, t, 2) if angles is None else angles
        boxes, angles = _stand_in_boxes(boxes, angles, present)
        fused, source = self._fuse(features, frames)
        params = self.hand_head(fused)
        rotmats, crop_cam = params.rotmats, params.crop_cam
        if self.mirror_left:
            rotmats = torch.stack([rotmats[:, :, 0], mirror_rotmats(rotmats[:, :, 1])], dim=2)
            crop_cam = torch.stack([crop_cam[:, :, 0], crop_cam[:, :, 1] * crop_cam.new_tensor([1.0, -1.0, 1.0])], dim=2)

        box, turn = self._crop_boxes(boxes, angles, holistic_box, source)
        size = image_size.to(crop_cam)
        f = default_focal(size) if focal is None else focal.to(crop_cam)
        pp = size / 2 if principal_point is None else principal_point.to(crop_cam)
        K = intrinsics(f, pp)[:, None, None]
        box_size = crop_camera_box_size(box[..., 3], self.config.image_size[0])
        models = (self.right_model, self.left_model)
        if self.config.crop_frame:
            frame = crop_frame_rotation(box[..., :2], turn, K)  # (B, T_out, 2, 3, 3)
            root = torch.stack([m.rest_joints(params.betas[:, :, h].flatten(0, 1), batch=b * len(frames))[:, 0]
                                for h, m in enumerate(models)], 1).unflatten(0, (b, len(frames)))
            orient, transl = crop_to_camera(rotmats[..., 0, :, :], crop_cam_to_translation(crop_cam, f[:, None, None], box_size),
                                            root, frame)
            rotmats = torch.cat([orient[..., None, :, :], rotmats[..., 1:, :, :]], dim=-3)
        else:
            transl = crop_cam_to_full_translation(crop_cam, box[..., :2], box_size, size[:, None, None],
                                                  f[:, None, None], pp[:, None, None])

        outputs = [model(rotmats=rotmats[:, :, h].flatten(0, 1), betas=params.betas[:, :, h].flatten(0, 1))
                   for h, model in enumerate(models)]
        vertices = torch.stack([o.vertices for o in outputs], 1).unflatten(0, (b, len(frames)))
        keypoints = torch.stack([o.keypoints for o in outputs], 1).unflatten(0, (b, len(frames)))
        cam_kp = keypoints + transl[..., None, :]
        if self.relative_head is not None:
            v = self.relative_head(fused)
        else:
            v = cam_kp[:, :, 1, 0] - cam_kp[:, :, 0, 0]
        return HandsPrediction(
            frames=source, rotmats=rotmats, betas=params.betas, crop_cam=crop_cam,
            vertices=vertices, keypoints=keypoints, transl=transl, v=v,
            keypoints_2d=project(cam_kp, K), present=present[:, source],
            hand_model=self.right_model.name)

    def forward(self, crops: Tensor, boxes: Tensor, image_size: Tensor, focal: Tensor | None = None,
                present: Tensor | None = None, frames: Tensor | None = None,
                holistic: Tensor | None = None, holistic_box: Tensor | None = None,
                principal_point: Tensor | None = None, angles: Tensor | None = None,
                trunk: Tensor | None = None) -> HandsPrediction:
        """Encode every frame of the window, then decode it (module docstring)."""
        features = self.encode(crops, boxes, present, holistic, angles, trunk)
        return self.decode(features, boxes, image_size, focal, present, frames, holistic_box,
                           principal_point, angles)
