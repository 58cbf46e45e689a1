"""Load published ViT backbone weights (ViTPose, HaMeR, 4DHands) from a local file.

Accepted files (never downloaded):

- ``.safetensors``;
- PyTorch ``.pth`` / ``.pt`` / ``.ckpt`` / ``.bin``, read with ``torch.load(...,
  weights_only=True)``. Lightning checkpoints such as HaMeR's ``hamer.ckpt`` also pickle
  their training config (a yacs ``CfgNode``), which ``weights_only`` refuses; such files are
  read again by an unpickler that allows exactly the globals ``weights_only`` allows and
  replaces every other object by an inert placeholder, so no code from the file runs.

The tensors may sit under ``state_dict`` / ``model`` / ``module`` keys (Lightning, mmcv,
DDP) and under a name prefix such as ``backbone.`` (HaMeR and mmpose checkpoints) or
``module.backbone.``; the prefix is found by matching the names against the model's. A
``pos_embed`` laid out for another token grid (e.g. 16 x 12 weights for 128 x 96 crops) is
resized to the model's grid with :func:`fourdhands.model.vit.resize_pos_embed`.
"""

import math
import types
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
# torch's own weights-only allowlist (private, but present since torch 1.13).
from torch._weights_only_unpickler import _get_allowed_globals

from ..errors import UserError
from ..safe_pickle import pickle_module
from .vit import ViT, resize_pos_embed

TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")
_WRAPPER_KEYS = ("state_dict", "model", "module")


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_backbone_weights` did.

    ``loaded``, ``missing`` and ``mismatched`` partition the model's state-dict keys (its
    names, without the prefix): copied from the file; absent from it; present with another
    shape and left as they were. ``unexpected`` holds the file's own names of tensors the
    model has no place for (heads, a discriminator, ...). ``pos_embed_resized`` is
    ``(file_grid, model_grid)`` when the position embedding was resampled.
    """

    path: Path
    prefix: str
    loaded: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    mismatched: tuple[str, ...]
    pos_embed_resized: tuple[tuple[int, int], tuple[int, int]] | None = None

    @property
    def complete(self) -> bool:
        """Every backbone tensor came from the file."""
        return not self.missing and not self.mismatched

    def summary(self) -> str:
        """One line for logs, naming up to three keys of each kind of problem."""
        total = len(self.loaded) + len(self.missing) + len(self.mismatched)
        parts = [f"{self.path.name}: loaded {len(self.loaded)}/{total} backbone tensors "
                 f"(prefix {self.prefix!r})"]
        for label, keys in (("missing", self.missing), ("mismatched", self.mismatched),
                            ("unexpected", self.unexpected)):
            if keys:
                more = ", ..." if len(keys) > 3 else ""
                parts.append(f"{len(keys)} {label} ({', '.join(keys[:3])}{more})")
        if self.pos_embed_resized:
            (h0, w0), (h1, w1) = self.pos_embed_resized
            parts.append(f"pos_embed resized {h0}x{w0} -> {h1}x{w1}")
        return "; ".join(parts)


def load_backbone_weights(model: ViT, path, *, prefix: str | None = None) -> LoadReport:
    """Copy the backbone tensors of a local checkpoint into ``model``, in place.

    Args:
        model: the :class:`~fourdhands.model.vit.ViT` to fill (any dtype and device; the
            file's tensors are converted).
        path: ``.safetensors`` or a PyTorch checkpoint (see the module docstring).
        prefix: the name prefix of the backbone's tensors in the file, e.g. ``"backbone."``
            or ``""``; ``None`` finds it.

    Returns:
        A :class:`LoadReport`; tensors that are missing or have another shape keep their
        current values.

    Raises:
        UserError: the file is missing, unreadable or corrupt, or holds no tensor that fits
            this backbone (another model's weights, or another size of ViT).
    """
    path = Path(path)
    tensors = _checkpoint_tensors(_read(path))
    model_state = model.state_dict()
    if prefix is None:
        prefix = _find_prefix(tensors, model_state)
    if prefix is None:
        raise UserError(f"{path}: no ViT backbone weights in it (no tensor named like "
                        f"'patch_embed.proj.weight' or 'blocks.0.attn.qkv.weight', "
                        f"with or without a prefix)")

    names = {key: key[len(prefix):] for key in tensors
             if key.startswith(prefix) and key[len(prefix):] in model_state}
    backbone = {name: tensors[key] for key, name in names.items()}
    unexpected = tuple(key for key in tensors if key not in names)
    resized = None
    if "pos_embed" in backbone:
        backbone["pos_embed"], resized = _fit_pos_embed(backbone["pos_embed"], model)
    mismatched = tuple(key for key, value in backbone.items()
                       if value.shape != model_state[key].shape)
    loaded = tuple(key for key in model_state if key in backbone and key not in mismatched)
    if not loaded:
        found = (f"{len(mismatched)} backbone tensors of other shapes" if mismatched
                 else "no backbone tensors")
        raise UserError(f"{path}: nothing fits this ViT ({found} under prefix {prefix!r}); "
                        f"is it another model's or another ViT size's checkpoint?")
    model.load_state_dict({key: backbone[key] for key in loaded}, strict=False)
    return LoadReport(
        path=path,
        prefix=prefix,
        loaded=loaded,
        missing=tuple(key for key in model_state if key not in backbone),
        unexpected=unexpected,
        mismatched=mismatched,
        pos_embed_resized=resized,
    )


def _read(path: Path) -> object:
    """The file's contents: a name -> tensor dict, or whatever ``torch.save`` stored."""
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a weights file")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise UserError(f"{path}: reading .safetensors needs the 'safetensors' package "
                            f"(pip install safetensors)") from None
        try:
            return load_file(path, device="cpu")
        except Exception as exc:  # the library raises its own error types for bad headers
            raise UserError(f"{path}: not a readable safetensors file "
                            f"({_first_line(exc)})") from exc
    if suffix not in TORCH_SUFFIXES:
        raise UserError(f"{path}: unknown weights format {suffix!r}; expected .safetensors or "
                        f"one of {', '.join(TORCH_SUFFIXES)}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # refused objects (a training config) or a corrupt file: see below
        pass
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_inert_pickle())
    except Exception as exc:
        raise UserError(f"{path}: not a readable PyTorch checkpoint ({_first_line(exc)})") from exc


class _Inert(dict):
    """Stands in for any object of a checkpoint outside torch's weights-only allowlist.

    It accepts whatever the unpickler hands it (constructor arguments, state, items) and
    keeps nothing but dict items, so a config or an optimizer object becomes harmless data.
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def __setstate__(self, state):
        pass

    def append(self, item):
        pass

    def extend(self, items):
        pass


def _inert_pickle() -> types.ModuleType:
    """A pickle module resolving exactly the globals ``torch.load(weights_only=True)``
    allows (torch's own list: the version installed decides, as it does for weights_only),
    every other global becoming :class:`_Inert`."""
    allowed = {tuple(path.rsplit(".", 1)): obj for path, obj in _get_allowed_globals().items()}
    return pickle_module(allowed, lambda module, name: _Inert)


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _checkpoint_tensors(obj: object) -> dict[str, torch.Tensor]:
    """The flat name -> tensor dict of a checkpoint, under its state_dict/model/module keys."""
    while isinstance(obj, Mapping):
        inner = next((obj[key] for key in _WRAPPER_KEYS if isinstance(obj.get(key), Mapping)), None)
        if inner is None:
            return {key: value for key, value in obj.items()
                    if isinstance(key, str) and isinstance(value, torch.Tensor)}
        obj = inner
    return {}


def _find_prefix(tensors: Mapping[str, torch.Tensor], model_state: Mapping) -> str | None:
    """The name prefix under which most of the file's tensors are model tensors, if any.

    Every split of a name at a dot whose tail is a model key votes for its head, so
    ``backbone.blocks.0.norm1.weight`` votes for ``"backbone."``; ties go to the shorter.
    """
    votes = Counter()
    for key in tensors:
        parts = key.split(".")
        for i in range(len(parts)):
            if ".".join(parts[i:]) in model_state:
                votes["".join(part + "." for part in parts[:i])] += 1
    if not votes:
        return None
    return max(votes.items(), key=lambda item: (item[1], -len(item[0])))[0]


def _fit_pos_embed(
    pos_embed: torch.Tensor, model: ViT
) -> tuple[torch.Tensor, tuple[tuple[int, int], tuple[int, int]] | None]:
    """The file's ``pos_embed`` resampled to the model's grid, and ``(file_grid, model_grid)``.

    Returned as it is, with ``None``, if it already fits or has another width or layout.

    A ViTPose ``pos_embed`` is ``(1, 1 + h * w, C)`` without a record of ``(h, w)``; the
    factorisation of ``h * w`` closest in aspect ratio to the model's grid is taken (16 x 12
    for 192 patches, 14 x 14 for an ImageNet 224 x 224 pre-training's 196).
    """
    target = model.pos_embed.shape
    grid = model.config.grid
    n = pos_embed.shape[1] - 1 if pos_embed.ndim == 3 else 0
    if (pos_embed.shape == target or n < 1 or pos_embed.shape[0] != 1
            or pos_embed.shape[2] != target[2]):
        return pos_embed, None
    aspect = math.log(grid[0] / grid[1])
    source = min(((h, n // h) for h in range(1, n + 1) if n % h == 0),
                 key=lambda g: abs(math.log(g[0] / g[1]) - aspect))
    return resize_pos_embed(pos_embed, source, grid), (source, grid)
