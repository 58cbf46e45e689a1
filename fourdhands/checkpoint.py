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


def _own_state(net: FourDHands) -> dict[str, torch.Tensor]:
    """Every weight of ``net`` but the hand models' buffers (rebuilt from the config)."""
    hand_models = ("right_model.", "left_model.")
    return {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items() if not k.startswith(hand_models)}


def _weights(net: FourDHands) -> dict[str, torch.Tensor]:
    """What a checkpoint stores: :func:`_own_state` less the backbone's external weights
    that training left as they came (read again at load)."""
    external = net.external_weights()
    return {k: v for k, v in _own_state(net).items() if not (k in external and torch.equal(v, external[k]))}


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


def trained_gap(folder: str | os.PathLike) -> int:
    """The frame gap the checkpoint's temporal windows were trained with (its training
    config's ``sample.gap``; 5, the paper's and ``SampleConfig``'s default, when it has
    none): inference cuts its windows alike."""
    from .data.sample import SampleConfig

    return int(read_config(folder).get("train", {}).get("sample", {}).get("gap", SampleConfig.gap))


def read_weights(folder: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The checkpoint's weights by state-dict key (UserError when absent or corrupt)."""
    folder = Path(folder)
    if not (folder / WEIGHTS).is_file():
        raise UserError(f"{folder}: not a checkpoint (needs {WEIGHTS} and {CONFIG})")
    try:
        return load_file(str(folder / WEIGHTS))
    except (SafetensorError, OSError) as e:
        raise UserError(f"{folder}: corrupt {WEIGHTS} ({e})") from None


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
    weights = read_weights(folder)
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


def initialise_from(net: FourDHands, folder: str | os.PathLike) -> list[str]:
    """Start ``net`` from the weights of checkpoint ``folder`` (``init`` of a training run):
    every weight ``net`` has with the same name and shape is loaded. Returns the modules
    that start fresh (their weights are not all in the checkpoint, e.g. the temporal
    decoder after a single-frame run), as dotted module names, sorted.

    UserError when ``folder`` is not a checkpoint, was made for another backbone, or
    shares no weight with ``net``."""
    folder = Path(folder)
    config = read_config(folder)
    theirs = config.get("model", {}).get("backbone")
    if theirs is not None and backbone_spec_name(theirs) != backbone_spec_name(net.config.backbone):
        raise UserError(f"init: {folder} was made for backbone {theirs!r}, this run's is {net.config.backbone!r}")
    own = _own_state(net)
    weights = read_weights(folder)
    fitting = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    if not fitting:
        raise UserError(f"init: no weight of {folder} fits this model")
    net.load_state_dict(fitting, strict=False)
    external = net.external_weights()  # a checkpoint leaves these out when they are as they came
    loaded = set(fitting) | set(external)
    return _covering_modules([k for k in own if k not in loaded], loaded)


def _covering_modules(fresh: list[str], loaded: set[str]) -> list[str]:
    """The fewest dotted module names that cover the ``fresh`` weight keys and none of the
    ``loaded`` ones: each fresh key's highest ancestor with no loaded weight below it."""
    out = set()
    for key in fresh:
        parts = key.split(".")
        for depth in range(1, len(parts)):
            prefix = ".".join(parts[:depth])
            if not any(k.startswith(prefix + ".") for k in loaded):
                out.add(prefix)
                break
        else:
            out.add(key)
    return sorted(out)


#: Training settings a resumed run may change: they do not alter what the weights or the
#: optimiser state mean (where the run stops, how often it reports, its loader workers).
#: A run extended past its end continues under the schedule of its new ``steps``.
RESUMABLE_CHANGES = ("steps", "log_every", "ckpt_every", "workers")


def resume_from(net: FourDHands, folder: str | os.PathLike, train_config: dict) -> dict:
    """Load the weights of checkpoint ``folder`` into ``net`` for resuming the run whose
    config (the ``train`` section a checkpoint stores) is ``train_config``, and return the
    saved training state (optimizer, schedule, step, RNG).

    The saved config must equal ``train_config`` except in :data:`RESUMABLE_CHANGES`, and
    the weights must be exactly ``net``'s: otherwise a one-line UserError naming the first
    difference (a resumed run would silently leave new modules at their initial weights)."""
    folder = Path(folder)
    saved = read_config(folder).get("train")
    if saved is None:
        raise UserError(f"{folder}: holds no training config, cannot resume from it")
    train_config = json.loads(json.dumps(train_config))  # as it was saved: tuples are lists
    for key in sorted(set(saved) | set(train_config)):
        if key not in RESUMABLE_CHANGES and saved.get(key) != train_config.get(key):
            raise UserError(f"{folder}: cannot resume: the run's {key} is {_short(train_config.get(key))}, "
                            f"the checkpoint's {_short(saved.get(key))} (use a new out folder)")
    weights = read_weights(folder)
    own = _own_state(net)
    external = net.external_weights()
    missing = sorted(k for k in own if k not in weights and k not in external)
    unexpected = sorted(set(weights) - set(own))
    if missing or unexpected:
        what = f"lacks {missing[0]}" if missing else f"has {unexpected[0]}, which this model does not"
        raise UserError(f"{folder}: cannot resume: the checkpoint {what}")
    net.load_state_dict(weights, strict=False)
    if not (folder / STATE).is_file():
        raise UserError(f"{folder}: no {STATE}, cannot resume from it")
    return torch.load(folder / STATE, weights_only=True)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
