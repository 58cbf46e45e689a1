"""Checkpoints: a folder per save, weights as safetensors, written atomically.

Layout of one checkpoint folder::

    model.safetensors   the network's parameters (no hand-model buffers: those are
                        rebuilt from the config's hand model)
    config.json         {"model": ModelConfig as a dict, ...anything the writer adds}
    state.pt            optional training state: optimizer, step, RNG (resume only)

The folder is written under a temporary name and renamed when complete, so a killed
save never leaves a checkpoint that looks whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import UserError
from .io import atomic_folder
from .model.config import ModelConfig
from .model.network import FourDHands
from .model.weights import _fit_pos_embed

WEIGHTS, CONFIG, STATE = "model.safetensors", "config.json", "state.pt"


def _weights(net: FourDHands) -> dict[str, torch.Tensor]:
    """What a checkpoint stores: every weight but the hand models' buffers and the
    backbone's external weights that training left as they came (read again at load)."""
    hand_models = ("right_model.", "left_model.")
    external = net.external_weights()
    state = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()
             if not k.startswith(hand_models)}
    return {k: v for k, v in state.items() if not (k in external and torch.equal(v, external[k]))}


def save_checkpoint(folder: str | os.PathLike, net: FourDHands, extra_config: dict | None = None,
                    state: dict | None = None) -> Path:
    """Write ``folder`` (replacing an older one of that name) and return it."""
    folder = Path(folder)
    with atomic_folder(folder) as tmp:
        save_file(_weights(net), str(tmp / WEIGHTS))
        config = {"model": net.config.to_dict(), **(extra_config or {})}
        (tmp / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        if state is not None:
            torch.save(state, tmp / STATE)
    return folder


def read_config(folder: str | os.PathLike) -> dict:
    """The checkpoint's ``config.json`` (UserError when absent or unreadable)."""
    folder = Path(folder)
    if not (folder / WEIGHTS).is_file() or not (folder / CONFIG).is_file():
        raise UserError(f"{folder}: not a checkpoint (needs {WEIGHTS} and {CONFIG})")
    try:
        return json.loads((folder / CONFIG).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{folder}: unreadable {CONFIG} ({e})") from None


def load_checkpoint(folder: str | os.PathLike, expect: ModelConfig | None = None,
                    device: str | torch.device = "cpu") -> FourDHands:
    """The network saved in ``folder``, in eval mode.

    ``expect``: if given, the checkpoint must have been made for this config (e.g. the
    preset a command line asked for); a mismatch is a one-line UserError naming the first
    differing field.
    """
    folder = Path(folder)
    raw = read_config(folder)
    try:
        config = ModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw["model"].items()})
    except (KeyError, TypeError) as e:
        raise UserError(f"{folder}: {CONFIG} holds no valid model config ({e})") from None
    if expect is not None and expect != config:
        field = next(k for k in config.to_dict() if getattr(config, k) != getattr(expect, k))
        raise UserError(f"{folder}: checkpoint is for {field}={getattr(config, field)!r}, "
                        f"not {getattr(expect, field)!r}")
    try:
        weights = load_file(str(folder / WEIGHTS))
    except (SafetensorError, OSError) as e:
        raise UserError(f"{folder}: corrupt {WEIGHTS} ({e})") from None
    net = FourDHands(config)
    if "backbone.pos_embed" in weights and hasattr(net.backbone, "pos_embed"):
        # checkpoints from before the ViT was laid out for its crop size kept the
        # pre-training grid and resized it on every forward; resizing once is the same
        weights["backbone.pos_embed"] = _fit_pos_embed(weights["backbone.pos_embed"], net.backbone)[0]
    expected = _weights(net)
    missing = sorted(set(expected) - set(weights))
    wrong = sorted(k for k in set(expected) & set(weights) if expected[k].shape != weights[k].shape)
    if missing or wrong:
        what = f"missing {missing[0]}" if missing else f"shape of {wrong[0]}"
        made_for = weights_backbone(weights)
        if made_for is not None and made_for != backbone_spec_name(config.backbone):
            raise UserError(f"{folder}: weights were made for backbone {made_for!r}, its config says "
                            f"{config.backbone!r}")
        raise UserError(f"{folder}: weights do not fit the saved config ({what})")
    net.load_state_dict(weights, strict=False)
    return net.to(device).eval()


def weights_backbone(weights: dict[str, torch.Tensor]) -> str | None:
    """Which registered backbone a state dict's ``backbone.*`` weights belong to, when the
    keys tell (a ViT preset by its width), else None."""
    from .model.vit import VIT_PRESETS

    if any(k.startswith("backbone.encoder.") for k in weights):
        return "mediapipe_hand"
    pos = weights.get("backbone.pos_embed")
    if pos is not None:
        return next((name for name, vit in VIT_PRESETS.items() if vit.embed_dim == pos.shape[-1]), None)
    return None


def backbone_spec_name(name: str) -> str:
    """A backbone's registered name (aliases resolved)."""
    from .model.backbones import ALIASES

    return ALIASES.get(name, name)


def latest_checkpoint(root: str | os.PathLike) -> Path | None:
    """The complete ``step-*`` checkpoint with the highest step below ``root``, if any."""
    root = Path(root)
    steps = sorted(p for p in root.glob("step-*") if (p / WEIGHTS).is_file() and (p / CONFIG).is_file())
    return steps[-1] if steps else None


def pack_checkpoint(folder: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy checkpoint ``folder`` to ``dest`` as the package ships it: the weights in
    float16 (half the bytes; the network computes in float32 after loading, and the
    rounding moves its outputs by far less than its errors), the config, and no optimizer
    state. ``dest`` is replaced atomically."""
    folder, dest = Path(folder), Path(dest)
    net = load_checkpoint(folder)
    config = read_config(folder)
    with atomic_folder(dest) as tmp:
        save_file({k: v.half() if v.is_floating_point() else v for k, v in _weights(net).items()},
                  str(tmp / WEIGHTS))
        (tmp / CONFIG).write_text(json.dumps({**config, "packed_from": str(folder)}, indent=2) + "\n")
    return dest
