"""The whole generation job: ``N`` sequences of ``F`` frames into sharded output,
resumable.

Sequence ``i`` of a split is a function of ``(seed, split, i)`` alone, so shards can be
made in any order, by any run: a resumed job skips the shards its manifest lists and
ends with the same bytes as an uninterrupted one. An interrupted shard leaves nothing
behind (it is written under a temporary name), the completed ones stay.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path


from ..errors import UserError
from ..io import ensure_output_dir
from ..progress import progress_bar
from . import shards as shard_io
from .appearance import BUNDLED, list_images, scikit_image_photos
from .motion import SPLITS
from .scene import Synthesizer

MIN_SIDE = 32  # pixels: below this a hand is a handful of pixels


def _whole(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return value


def _image_size(image_size) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in image_size)
        ok = all(float(x) == int(x) for x in image_size)
    except (TypeError, ValueError):
        raise UserError(f"image size must be two whole numbers W, H, got {image_size!r}") from None
    if not ok:
        raise UserError(f"image size must be two whole numbers W, H, got {image_size!r}")
    if w < MIN_SIDE or h < MIN_SIDE:
        raise UserError(f"image size {w}x{h} is too small (at least {MIN_SIDE}x{MIN_SIDE})")
    return w, h


def _photos(backgrounds) -> tuple[list[Path], dict | None]:
    """The background photos (a folder's, or scikit-image's bundled ones when
    ``backgrounds`` is ``"scikit-image"``) and their fingerprint (count, SHA-1 of names
    and bytes)."""
    if backgrounds is None:
        return [], None
    if str(backgrounds) == BUNDLED:
        try:
            photos = scikit_image_photos()
        except LookupError as e:
            raise UserError(f"backgrounds '{BUNDLED}': {e}") from None
    else:
        folder = Path(backgrounds)
        if not folder.is_dir():
            raise UserError(f"backgrounds folder '{folder}' does not exist")
        photos = list_images(folder)
        if not photos:
            raise UserError(f"backgrounds folder '{folder}' holds no images (.jpg, .jpeg, .png, .bmp, .webp)")
    digest = hashlib.sha1()
    for p in photos:
        digest.update(p.name.encode() + b"\0" + p.read_bytes())
    return photos, {"count": len(photos), "sha1": digest.hexdigest()}


def _job(split, seed, sequences, frames, size, hand_model, shard_size, fingerprint) -> dict:
    return {
        "format": shard_io.FORMAT, "split": split, "seed": seed, "sequences": sequences, "frames": frames,
        "image_size": list(size), "hand_model": str(hand_model), "flat_hand_mean": True, "units": "metres",
        "frame": "camera, OpenCV", "shard_size": shard_size, "backgrounds": fingerprint,
        "complete": False, "shards": [],
    }


def _resume(out: Path, job: dict) -> dict:
    """The manifest to continue from: the folder's own if it holds this very job, a
    fresh one if it holds none; UserError if it holds another."""
    if not (out / shard_io.MANIFEST).exists():
        return job
    found = shard_io.read_manifest(out)
    differs = [k for k in job if k not in ("complete", "shards") and found.get(k) != job[k]]
    if differs:
        k = differs[0]
        raise UserError(f"{out} holds another synth job ({k} {found.get(k)!r}, not {job[k]!r}); "
                        "use a new folder or the same settings to resume")
    return found


def _clear_partials(out: Path) -> None:
    """Remove temporary shards a killed run left (atomic writes name them '.shard-*')."""
    for stale in out.glob(".shard-*.tar*"):
        stale.unlink(missing_ok=True)


def generate(out_dir, sequences: int, frames: int, seed: int, split: str = "train",
             image_size=(320, 240), backgrounds=None, shard_size: int = 16, progress: bool = True,
             hand_model: str = "open", backend: str = "auto") -> dict:
    """Generate (or finish generating) a synthetic dataset in ``out_dir``.

    Args:
        out_dir: the output folder (created if needed).
        sequences: N >= 1 sequences, ids 0 .. N-1.
        frames: F >= 1 frames each.
        seed: >= 0; with ``split``, determines every byte.
        split: one of ``interacting``, ``far_and_scaled``, ``single_hand``, ``occluded``,
            ``train`` (see :data:`fourdhands.synth.motion.SPLITS`).
        image_size: ``(W, H)`` pixels, each >= 32.
        backgrounds: optional folder of photos to draw backgrounds from (they join the
            procedural textures), or ``"scikit-image"`` for the photographs bundled in
            scikit-image (:data:`~fourdhands.synth.appearance.SCIKIT_IMAGE_PHOTOS`).
        shard_size: sequences per shard (the unit of resumption).
        progress: show a progress bar (tqdm, on stderr) over sequences.
        hand_model: ``"open"`` or a MANO file / folder.
        backend: renderer backend (``"auto"``: GL when available, else NumPy).

    Returns:
        a summary: ``out_dir``, ``written`` and ``skipped`` shard names, ``sequences`` and
        ``frames`` generated now, ``seconds`` spent generating them (after setup),
        ``frames_per_second``, ``backend``.

    Raises:
        UserError: a bad argument, an unwritable folder, or a folder holding another job.
    """
    sequences = _whole(sequences, "number of sequences", 1)
    frames = _whole(frames, "number of frames", 1)
    seed = _whole(seed, "seed", 0)
    shard_size = _whole(shard_size, "shard size", 1)
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})")
    size = _image_size(image_size)
    photos, fingerprint = _photos(backgrounds)
    out = ensure_output_dir(out_dir)

    manifest = _resume(out, _job(split, seed, sequences, frames, size, hand_model, shard_size, fingerprint))
    _clear_partials(out)
    done = {s["path"] for s in manifest["shards"]}
    plan = [(shard_io.shard_name(k), range(k * shard_size, min((k + 1) * shard_size, sequences)))
            for k in range(math.ceil(sequences / shard_size))]
    todo = [(name, ids) for name, ids in plan if name not in done]
    summary = {"out_dir": str(out), "written": [], "skipped": sorted(done), "sequences": 0, "frames": 0,
               "seconds": 0.0, "frames_per_second": 0.0, "backend": None}
    if not todo:
        return summary

    synth = Synthesizer(size, hand_model=hand_model, backgrounds=photos, backend=backend)
    summary["backend"] = synth.renderer.backend
    start = time.perf_counter()  # the rate counts generation, not loading the hand model
    bar = progress_bar(total=sequences, initial=sequences - sum(len(ids) for _, ids in todo), unit="seq",
                       desc=f"synth {split}", disable=not progress)

    def made(ids):
        for i in ids:
            yield i, synth.sequence(split, seed, i, frames)
            bar.update(1)
            summary["sequences"] += 1
            summary["frames"] += frames

    try:
        shard_io.write_manifest(out, manifest)  # claims the folder for this job
        for name, ids in todo:
            shard_io.write_shard(out / name, made(ids))
            manifest["shards"] = sorted(manifest["shards"] + [{"path": name, "sequences": list(ids)}],
                                        key=lambda s: s["path"])
            manifest["complete"] = len(manifest["shards"]) == len(plan)
            shard_io.write_manifest(out, manifest)
            summary["written"].append(name)
    finally:
        bar.close()
    summary["seconds"] = round(time.perf_counter() - start, 3)
    summary["frames_per_second"] = round(summary["frames"] / max(summary["seconds"], 1e-9), 2)
    return summary
