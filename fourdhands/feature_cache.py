"""An on-disk cache of a frozen backbone trunk's features over augmented sequences.

Training with a frozen, pre-trained encoder spends nearly all its time encoding crops.
The cache encodes each augmented crop once: for every sequence of the data folders and
every *draw* (an independent augmentation), all frames of the sequence share one
augmentation (one flip, rotation, box jitter, colour and occluder; the key
``(seed, draw, folder, sequence)``), so temporal windows cut from the cache are
consistent. Each frame stores its hands' trunk features in the network's view
(:meth:`FourDHands.network_views`: normalised, the left crop mirrored) as float16, and
the frame's targets and inputs of the sample schema (:mod:`fourdhands.data.sample`)
except the crops.

Layout of a cache folder::

    manifest.json       format, backbone, sample config, seed, draws, sources, chunks done
    chunk-00000.npz     sequences in order: draw-major, then folder, then sequence

A chunk is written atomically, and the manifest after it, so an interrupted build
resumes at the first missing chunk; a build with other settings is refused.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .data.dataset import HandWindows
from .data.sample import MODEL_FIELDS, SampleConfig, window_frames
from .errors import UserError
from .io import atomic_path, write_json

FORMAT = "fourdhands-features/1"
MANIFEST = "manifest.json"
_FRAME_KEYS = ("global_orient", "hand_pose", "betas", "transl", "keypoints_3d", "keypoints_2d",
               "visible", "present", "v", "boxes", "angles", "K", "image_size", "focal")
# Written since real data joined the sources; a cache without them holds synthetic data only.
_LABEL_KEYS = ("joint_valid", "has_mano")


def _chunk_name(k: int) -> str:
    return f"chunk-{k:05d}.npz"


def build_cache(net, sources: list[str], out: str | Path, sample: SampleConfig, draws: int = 1,
                seed: int = 0, chunk: int = 64, batch: int = 32, progress: bool = True,
                options: dict[str, dict] | None = None) -> Path:
    """Encode ``sources`` (data specs, :func:`fourdhands.data.sources.parse_spec`) into the
    cache folder ``out``.

    Args:
        net: the network whose ``trunk`` encodes (eval mode; only its backbone is used).
        sample: how crops are cut and augmented (``seq_len`` is ignored: frames are cached).
        draws: independent augmentations of each sequence.
        chunk: sequences per chunk file; batch: crops per trunk call.
        options: per spec, the reader's options (``skip_missing``, ``mano`` of
            :func:`~fourdhands.data.sources.open_sequences`).
    """
    from .data.sources import open_sequences

    out = Path(out)
    frame_sample = SampleConfig(**{**asdict(sample), "seq_len": 1})
    windows = [HandWindows(open_sequences(s, **(options or {}).get(s, {})), frame_sample, seed=seed) for s in sources]
    manifest = {"format": FORMAT, "backbone": net.config.backbone, "sample": asdict(frame_sample),
                "seed": seed, "draws": draws, "sources": [str(s) for s in sources],
                "sequences": [len(w.source) for w in windows], "chunk": chunk}
    done = _resume(out, manifest)
    jobs = [(d, f, s) for d in range(draws) for f, w in enumerate(windows) for s in range(len(w.source))]
    chunks = [jobs[i:i + chunk] for i in range(0, len(jobs), chunk)]
    bar = None
    if progress:
        from .progress import progress_bar

        bar = progress_bar(total=len(jobs), initial=min(len(jobs), done * chunk), unit="seq", desc="feature cache")
    net.eval()
    for k in range(done, len(chunks)):
        arrays = _encode_chunk(net, windows, chunks[k], seed, batch)
        with atomic_path(out / _chunk_name(k)) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        write_json(out / MANIFEST, {**manifest, "chunks_done": k + 1, "chunks": len(chunks)})
        if bar is not None:
            bar.update(len(chunks[k]))
    if bar is not None:
        bar.close()
    return out


def _resume(out: Path, manifest: dict) -> int:
    if not (out / MANIFEST).is_file():
        out.mkdir(parents=True, exist_ok=True)
        return 0
    old = json.loads((out / MANIFEST).read_text())
    same = {k: old.get(k) for k in manifest} == json.loads(json.dumps(manifest))
    if not same:
        raise UserError(f"{out}: holds a feature cache built with other settings; use another folder")
    return int(old.get("chunks_done", 0))


@torch.no_grad()
def _encode_chunk(net, windows, jobs, seed: int, batch: int) -> dict:
    frames, lengths = [], []
    for draw, folder, seq in jobs:
        w = windows[folder]
        start = int(w._starts[seq])
        n = int(w._starts[seq + 1]) - start
        for t in range(n):
            frames.append(w.sample(start + t, draw, key=(seed, draw, folder, seq)))
        lengths.append(n)
    crops = torch.stack([f["crops"][0] for f in frames])  # (N, 2, 3, h, w)
    views = net.network_views(crops)
    trunk = torch.cat([net.trunk(views[i:i + batch // 2]) for i in range(0, len(views), max(1, batch // 2))])
    arrays = {"trunk": trunk.half().numpy(), "lengths": np.asarray(lengths, np.int64),
              "jobs": np.asarray(jobs, np.int64)}
    for key in (*_FRAME_KEYS, *_LABEL_KEYS):
        value = torch.stack([f[key] for f in frames]).numpy()
        arrays[key] = value[:, 0] if value.ndim > 1 and key not in ("image_size", "K", "focal") else value
    return arrays


class CachedWindows(Dataset):
    """T-frame windows of a feature cache, as samples with ``trunk`` in place of ``crops``.

    One item per (cached sequence, centre frame); windows are cut as
    :func:`~fourdhands.data.sample.window_frames` does (``gap`` apart, reflected at the ends).
    The whole cache is held in memory (float16 trunk features)."""

    def __init__(self, folder: str | Path, seq_len: int, gap: int):
        folder = Path(folder)
        self.folder = folder
        if not (folder / MANIFEST).is_file():
            raise UserError(f"{folder}: not a feature cache (no {MANIFEST}; build it with `fourdhands cache`)")
        self.manifest = json.loads((folder / MANIFEST).read_text())
        n = int(self.manifest.get("chunks_done", 0))
        if n == 0:
            raise UserError(f"{folder}: the feature cache holds no chunk yet")
        parts = [dict(np.load(folder / _chunk_name(k))) for k in range(n)]
        self.arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if k not in ("jobs",)}
        self.lengths = self.arrays.pop("lengths")
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)])
        self.seq_len, self.gap = int(seq_len), int(gap)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def check_made_for(self, backbone: str, sample: SampleConfig) -> None:
        """UserError unless the cache was encoded by ``backbone`` from crops cut as
        ``sample`` cuts them (crop size, upright rule, box expansion): features of other
        crops would train the run on inputs its network never sees at inference."""
        made = self.manifest.get("sample", {})
        wanted = {"backbone": backbone, **{k: v for k, v in asdict(sample).items() if k in MODEL_FIELDS and k != "seq_len"}}
        found = {"backbone": self.manifest.get("backbone"), **{k: made.get(k) for k in wanted if k != "backbone"}}
        for key, value in wanted.items():
            if json.loads(json.dumps(value)) != found[key]:
                raise UserError(f"{self.folder}: the feature cache was made with {key} {found[key]!r}, "
                                f"this run's is {value!r} (build a new cache)")

    def set_epoch(self, epoch: int) -> None:  # the augmentation is fixed in the cache
        pass

    def sample(self, index: int, draw: int = 0) -> dict:
        seq = int(np.searchsorted(self.starts, index, side="right") - 1)
        centre = index - int(self.starts[seq])
        frames = window_frames(centre, int(self.lengths[seq]), self.seq_len, self.gap)
        rows = self.starts[seq] + frames
        out = {k: torch.as_tensor(self.arrays[k][rows]) for k in _FRAME_KEYS if k not in ("K", "image_size", "focal")}
        middle = rows[len(rows) // 2]
        out.update(trunk=torch.as_tensor(self.arrays["trunk"][rows]).float(),
                   K=torch.as_tensor(self.arrays["K"][middle]), image_size=torch.as_tensor(self.arrays["image_size"][middle]),
                   focal=torch.as_tensor(self.arrays["focal"][middle]), frames=torch.as_tensor(frames),
                   sequence=torch.tensor(seq))
        out["joint_valid"] = (torch.as_tensor(self.arrays["joint_valid"][rows]) if "joint_valid" in self.arrays
                              else torch.ones(out["visible"].shape, dtype=torch.bool))
        has_mano = (torch.as_tensor(self.arrays["has_mano"][rows]) if "has_mano" in self.arrays
                    else torch.ones(len(rows), dtype=torch.bool))
        out["has_mano"] = has_mano[:, None].expand(-1, 2) if has_mano.ndim == 1 else has_mano  # older caches: per frame
        return out

    def __getitem__(self, index: int) -> dict:
        return self.sample(index)
