"""The network's configuration: presets (sizes) and the paper's ablation switches.

A :class:`ModelConfig` is plain data; :func:`model_config` builds one from a preset name
(``tiny`` .. ``huge``), an ablation name (paper Table 5) and overrides. The ``huge`` preset
is the paper's: ViT-H backbone (C=1280, depth 32, 16 heads) on 256x192 crops (16x12
tokens), spatial fusion of depth 4 and width C with 16 heads, per-hand decoder and temporal
decoder of depth 6 and width 1024 with 8 heads (the sizes of the authors' released code).
The smaller presets keep the structure and shrink every part, for CPU work. The
``mediapipe`` preset puts the same RAT and SIR on MediaPipe's hand-landmark network,
pre-trained on real hands (224 x 224 upright crops, 7 x 7 tokens projected to 256
channels; orientation regressed in each crop's own frame).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Literal

from ..errors import UserError
from .backbones import backbone_spec


@dataclass(frozen=True)
class ModelConfig:
    """Everything that shapes the network.

    backbone: a name of ``fourdhands.model.backbones.BACKBONES`` (a ViT preset, or
        ``mediapipe_hand``) or one of its ``ALIASES``.
    image_size: crop ``(H, W)`` in pixels (paper: 256x192); a backbone with a fixed input
        size must get that size.
    token_dim: width of the tokens that RAT and SIR work on; the backbone's tokens are
        projected to it when it differs (None: the backbone's own width).
    upright: crops are turned so that the hand's wrist -> middle knuckle points up (from
        the hand's 2D evidence: training keypoints, the detector's landmarks), as
        MediaPipe's landmark network was trained to see hands.
    crop_frame: orientation and crop camera are regressed in each crop's own frame
        (``fourdhands.geometry.crop_frame``) rather than in the camera frame.
    fusion: cross-hand fusion (Table 5): ``"none"`` (Baseline: each hand alone),
        ``"holistic"`` (+Cross H: one crop holding both hands), ``"separate"`` (+Cross S:
        a crop per hand, their tokens fused by self-attention).
    rat: add the relation maps of RAT (Eq. 1-4) to the tokens (separate crops only).
    rat_join: ``"add"`` (authors' code) or ``"concat"`` (channel concatenation + projection).
    rat_tau: tau of Eq. 2; None takes ``fourdhands.model.rat``'s default.
    temporal: fuse T frames with the temporal decoder (+Seq); else each frame alone.
    seq_len: T, the frames of a window (paper: 9); a single frame is repeated T times.
    fusion_depth, fusion_heads: the adaptive spatial fusion encoder (width = backbone's C).
    decoder_dim, decoder_depth, decoder_heads: the per-hand transformer decoder giving G.
    temporal_depth, temporal_heads: the temporal decoder (width decoder_dim).
    v_from: the relative root vector v from its own head (``"head"``), or from the two
        hands' independent camera translations (``"cameras"``, the Baseline's way).
    hand_model: ``"open"`` or a path to MANO_RIGHT.pkl (the left file beside it).
    box_expand: context around the tight hand box before the crop is fitted to
        ``image_size``'s aspect. Part of the model because training and inference must crop
        alike: training reads it from here, inference from the checkpoint.
    """

    backbone: str = "small"
    image_size: tuple[int, int] = (256, 192)
    token_dim: int | None = None
    upright: bool = False
    crop_frame: bool = False
    fusion: Literal["none", "holistic", "separate"] = "separate"
    rat: bool = True
    rat_join: Literal["add", "concat"] = "add"
    rat_tau: float | None = None
    temporal: bool = True
    seq_len: int = 9
    fusion_depth: int = 2
    fusion_heads: int = 6
    decoder_dim: int = 384
    decoder_depth: int = 3
    decoder_heads: int = 8
    temporal_depth: int = 2
    temporal_heads: int = 8
    v_from: Literal["head", "cameras"] = "head"
    hand_model: str = "open"
    box_expand: float = 1.3

    def __post_init__(self):
        checks = {
            "fusion": self.fusion in ("none", "holistic", "separate"),
            "rat_join": self.rat_join in ("add", "concat"),
            "v_from": self.v_from in ("head", "cameras"),
            "rat": not (self.rat and self.fusion != "separate"),
            "seq_len": self.seq_len >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise UserError(f"model config: invalid {bad[0]}={getattr(self, bad[0])!r}"
                            + (" (RAT needs fusion='separate')" if bad[0] == "rat" else ""))
        fixed = backbone_spec(self.backbone).input_size
        if fixed is not None and tuple(self.image_size) != tuple(fixed):
            raise UserError(f"model config: backbone {self.backbone!r} takes {fixed[0]}x{fixed[1]} crops, "
                            f"not image_size={tuple(self.image_size)}")

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, dict] = {
    "tiny": dict(backbone="tiny", fusion_depth=1, fusion_heads=3, decoder_dim=192,
                 decoder_depth=2, decoder_heads=4, temporal_depth=1, temporal_heads=4),
    "small": dict(backbone="small", fusion_depth=2, fusion_heads=6, decoder_dim=384,
                  decoder_depth=3, decoder_heads=8, temporal_depth=2, temporal_heads=8),
    "base": dict(backbone="base", fusion_depth=4, fusion_heads=12, decoder_dim=512,
                 decoder_depth=4, decoder_heads=8, temporal_depth=4, temporal_heads=8),
    "large": dict(backbone="large", fusion_depth=4, fusion_heads=16, decoder_dim=1024,
                  decoder_depth=6, decoder_heads=8, temporal_depth=6, temporal_heads=8),
    "huge": dict(backbone="huge", fusion_depth=4, fusion_heads=16, decoder_dim=1024,
                 decoder_depth=6, decoder_heads=8, temporal_depth=6, temporal_heads=8),
    "mediapipe": dict(backbone="mediapipe_hand", image_size=(224, 224), token_dim=256, upright=True,
                      crop_frame=True, fusion_depth=1, fusion_heads=8, decoder_dim=256,
                      decoder_depth=2, decoder_heads=8, temporal_depth=2, temporal_heads=8),
}

#: Paper Table 5, one switch set per row.
ABLATIONS: dict[str, dict] = {
    "baseline": dict(fusion="none", rat=False, temporal=False, v_from="cameras"),
    "cross_h": dict(fusion="holistic", rat=False, temporal=False, v_from="head"),
    "cross_s_no_rat": dict(fusion="separate", rat=False, temporal=False, v_from="head"),
    "cross_s": dict(fusion="separate", rat=True, temporal=False, v_from="head"),
    "full": dict(fusion="separate", rat=True, temporal=True, v_from="head"),
}


def model_config(preset: str = "small", ablation: str = "full", **overrides) -> ModelConfig:
    """A config from a size preset, an ablation row and field overrides."""
    if preset not in PRESETS:
        raise UserError(f"model config: unknown preset {preset!r} (one of {', '.join(PRESETS)})")
    if ablation not in ABLATIONS:
        raise UserError(f"model config: unknown ablation {ablation!r} (one of {', '.join(ABLATIONS)})")
    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UserError(f"model config: unknown key {unknown[0]!r}")
    return replace(ModelConfig(**PRESETS[preset]), **{**ABLATIONS[ablation], **overrides})
