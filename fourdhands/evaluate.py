"""``fourdhands eval --ckpt C --data D``: the paper's table columns on held-out data.

For every frame of every sequence (each frame once: the centre of its window with
temporal fusion, a single frame without) the network's prediction is compared with the
ground truth, per hand and per split (a data spec is one split: a synthetic folder or
``KIND:PATH``, :mod:`fourdhands.data.sources`), with these protocols
(:mod:`fourdhands.metrics`). Only annotated joints count (``joint_valid``); the vertex and
orientation columns need MANO ground truth and are NaN without it:

- ``mpjpe`` / ``mpvpe``: IntagHand protocol (root = middle MCP, prediction scaled to the
  ground truth's wrist-to-MCP length): paper Tables 1, 2, 4.
- ``mpjpe_wrist``: InterHand2.6M protocol (wrist-aligned, no scaling).
- ``mrrpe``: error of v = left wrist - right wrist, frames with both hands: Tables 1, 2, 4.
- ``accel``: Accel_E (VIBE) on wrist-aligned joints per sequence, mm/frame^2: Tables 1, 3.
- ``rr_mpjpe``, ``rr_auc``, ``pa_mpjpe``, ``pa_auc``: DexYCB's root-relative and
  Procrustes-aligned errors and AUC over 0-50 mm: Table 3.

Two reference predictors give the numbers a trained model must beat: ``mean_pose_mpjpe``
(every hand predicted as the split's mean wrist-aligned hand, InterHand protocol) and
``mean_v_mrrpe`` (v predicted as the split's mean v).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from . import metrics
from .checkpoint import load_checkpoint, trained_gap
from .data.dataset import HandWindows
from .data.sample import model_sample_config, network_inputs
from .data.sources import open_sequences, parse_spec, sequence_name
from .geometry.camera import depths_from_v
from .geometry.rotations import axis_angle_to_matrix
from .io import atomic_path, ensure_output_dir, write_json
from .sides import SIDES

PROTOCOLS = {
    "mpjpe": "MPJPE, IntagHand protocol (root = middle MCP, skeleton scaling), mm",
    "mpvpe": "MPVPE, IntagHand protocol, mm",
    "mpjpe_wrist": "MPJPE, InterHand2.6M protocol (wrist-aligned, no scaling), mm",
    "mrrpe": "MRRPE (error of v = left wrist - right wrist), both hands present, mm",
    "mrrpe_placed": "MRRPE of the hands as `fourdhands run` places them (each wrist on its crop camera's ray, "
                    "depths from v), mm",
    "accel": "Accel_E (VIBE), wrist-aligned joints, per sequence, mm/frame^2",
    "rr_mpjpe": "DexYCB root-relative MPJPE (wrist-subtracted), mm",
    "rr_auc": "DexYCB root-relative AUC of PCK over 0-50 mm",
    "pa_mpjpe": "DexYCB Procrustes-aligned MPJPE (no reflections), mm",
    "pa_auc": "DexYCB Procrustes-aligned AUC of PCK over 0-50 mm",
    "mean_pose_mpjpe": "reference: split-mean wrist-aligned hand, InterHand2.6M protocol, mm",
    "mean_v_mrrpe": "reference: split-mean v, mm",
    "mean_pose_pa_mpjpe": "reference: split-mean wrist-aligned hand, Procrustes-aligned (DexYCB), mm",
    "orient": "global orientation error (geodesic angle, camera frame), degrees; a diagnostic, not a paper column",
    "mean_orient": "reference: split's chordal-mean orientation, degrees",
}


@torch.no_grad()
def predict_split(net, data: str | os.PathLike, gap: int, batch_size: int = 4,
                  workers: int = 0, progress: bool = False, frames: int | None = None,
                  skip_missing: bool = False, mano: str | None = None) -> dict[str, np.ndarray]:
    """Predictions and ground truth for every frame of a data spec (``KIND:PATH`` or a
    synthetic folder, :func:`fourdhands.data.sources.parse_spec`), or for ``frames`` of
    them spread evenly over it (float64 arrays):
    ``pred_kp``, ``gt_kp`` `(N, 2, 21, 3)` camera frame; ``pred_verts``, ``gt_verts``
    `(N, 2, V, 3)` root-relative; ``pred_orient``, ``gt_orient`` `(N, 2, 3, 3)` global
    orientations; ``pred_v``, ``gt_v`` `(N, 3)`; ``present`` `(N, 2)`; ``joint_valid``
    `(N, 2, 21)`; ``has_mano`` `(N, 2)`; ``sequence``, ``frame`` `(N,)`. ``skip_missing`` and ``mano``
    (the MANO files of readers that need them) are :func:`~fourdhands.data.sources.open_sequences`'s."""
    cfg = net.config
    seq_len = cfg.seq_len if cfg.temporal else 1
    source = open_sequences(str(data), skip_missing, mano)
    if getattr(source, "missing_images", 0):
        print(f"data {data}: {source.missing_images} frames left out, their images are missing", file=sys.stderr)
    ds = HandWindows(source, model_sample_config(cfg, gap=gap), hand_model=cfg.hand_model)
    if frames is not None and frames < len(ds):
        ds = Subset(ds, np.linspace(0, len(ds) - 1, frames).round().astype(int).tolist())
    loader = DataLoader(ds, batch_size=batch_size, num_workers=workers)
    if progress:
        from .progress import progress_bar

        loader = progress_bar(iterable=loader, desc=sequence_name(str(data)), unit="batch")
    out: dict[str, list] = {k: [] for k in ("pred_kp", "gt_kp", "pred_verts", "gt_verts", "pred_orient",
                                            "gt_orient", "pred_v", "gt_v", "present", "joint_valid", "has_mano",
                                            "sequence", "frame")}
    for batch in loader:
        pred = net(**network_inputs(batch))
        c = seq_len // 2 if cfg.temporal else slice(None)
        t = int(pred.frames[0]) if cfg.temporal else 0
        gt_rot = axis_angle_to_matrix(torch.cat([batch["global_orient"][:, t], batch["hand_pose"][:, t]], -1)
                                      .unflatten(-1, (16, 3)))
        gt_verts = torch.stack([m(rotmats=gt_rot[:, h], betas=batch["betas"][:, t, h]).vertices
                                for h, m in enumerate((net.right_model, net.left_model))], 1)
        gt_root = torch.stack([m(rotmats=gt_rot[:, h], betas=batch["betas"][:, t, h]).keypoints[:, 0]
                               for h, m in enumerate((net.right_model, net.left_model))], 1)
        out["pred_kp"].append(pred.camera_keypoints[:, 0])
        out["gt_kp"].append(batch["keypoints_3d"][:, t])
        out["pred_verts"].append(pred.vertices[:, 0] - pred.keypoints[:, 0, :, :1])
        out["gt_verts"].append(gt_verts - gt_root[:, :, None])
        out["pred_orient"].append(pred.rotmats[:, 0, :, 0])
        out["gt_orient"].append(gt_rot[:, :, 0])
        out["pred_v"].append(pred.v[:, 0])
        out["gt_v"].append(batch["v"][:, t])
        out["present"].append(batch["present"][:, t])
        out["joint_valid"].append(batch["joint_valid"][:, t])
        out["has_mano"].append(batch["has_mano"][:, t])
        out["sequence"].append(batch["sequence"])
        out["frame"].append(batch["frames"][:, c] if cfg.temporal else batch["frames"][:, 0])
    return {k: torch.cat(v).double().numpy() if k not in ("present", "joint_valid", "has_mano", "sequence", "frame")
            else torch.cat(v).numpy() for k, v in out.items()}


def split_metrics(r: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Table columns per hand (and their mean) from :func:`predict_split`'s arrays. Only
    annotated joints (``joint_valid``) are scored; vertex and orientation columns need
    MANO ground truth (``has_mano``) and are NaN without it; v needs both wrists."""
    r = {"joint_valid": np.ones(r["present"].shape + (21,), bool), "has_mano": np.ones(r["present"].shape, bool), **r}
    table = {side: _hand_row(r, h) for h, side in enumerate(SIDES)}
    both = r["present"].all(1) & r["joint_valid"][:, :, 0].all(1)
    mean_v = r["gt_v"][both].mean(0) if both.any() else np.zeros(3)
    placed = _placed_v(r)
    zeros = np.zeros_like(r["gt_v"])

    def v_error(pred_v):
        return metrics.mrrpe(pred_v, zeros, r["gt_v"], zeros, both) if both.any() else float("nan")

    shared = {"mrrpe": v_error(r["pred_v"]), "mrrpe_placed": v_error(placed),
              "mean_v_mrrpe": v_error(np.broadcast_to(mean_v, r["gt_v"].shape))}
    with warnings.catch_warnings():  # a column NaN for both hands (no MANO truth) stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        table["mean"] = {k: float(np.nanmean([table[s][k] for s in SIDES])) for k in table["right"]}
    for row in table.values():
        row.update({k: float(v) for k, v in shared.items()})
    return table


def _hand_row(r: dict[str, np.ndarray], h: int) -> dict[str, float]:
    """The per-hand columns of :func:`split_metrics` for hand ``h``."""
    present = r["present"][:, h]
    valid = present[:, None] & r["joint_valid"][:, h]  # (N, 21)
    mano = present & r["has_mano"][:, h].astype(bool)
    pk, gk = r["pred_kp"][:, h], r["gt_kp"][:, h]
    gt_rel = gk - gk[:, :1]
    counts = valid.sum(0)[:, None]
    mean_hand = np.where(valid[..., None], gt_rel, 0.0).sum(0) / np.maximum(counts, 1)  # per-joint mean
    mean_hands = np.broadcast_to(mean_hand, gk.shape)
    gt_orient = r["gt_orient"][:, h]
    row = {
        "mpjpe": metrics.mpjpe_intag(pk, gk, valid),
        "mpvpe": metrics.mpvpe_intag(r["pred_verts"][:, h], r["gt_verts"][:, h], pk - pk[:, :1], gt_rel, mano)
        if mano.any() else float("nan"),
        "mpjpe_wrist": metrics.mpjpe_wrist(pk, gk, valid),
        "accel": _accel(r, h),
        "mean_pose_mpjpe": metrics.mpjpe_wrist(mean_hands, gt_rel, valid),
        "mean_pose_pa_mpjpe": metrics.pa_mpjpe(mean_hands, gt_rel, valid) if present.any() else float("nan"),
        "orient": metrics.orientation_error(r["pred_orient"][:, h], gt_orient, mano) if mano.any() else float("nan"),
        "mean_orient": metrics.orientation_error(
            np.broadcast_to(metrics.mean_rotation(gt_orient[mano]), gt_orient.shape), gt_orient, mano)
        if mano.any() else float("nan"),
    }
    dex = metrics.dexycb_metrics(pk, gk, valid) if present.any() else {}
    row.update(rr_mpjpe=dex.get("root_relative_mpjpe", np.nan), rr_auc=dex.get("root_relative_auc", np.nan),
               pa_mpjpe=dex.get("procrustes_mpjpe", np.nan), pa_auc=dex.get("procrustes_auc", np.nan))
    return {k: float(v) for k, v in row.items()}


def _placed_v(r: dict[str, np.ndarray]) -> np.ndarray:
    """`(N, 3)` v as ``fourdhands run`` places the hands: each wrist slid along its crop
    camera's ray to the depths that v gives (:func:`~fourdhands.geometry.camera.depths_from_v`)."""
    out = np.zeros_like(r["pred_v"])
    for i, (wrists, v) in enumerate(zip(r["pred_kp"][:, :, 0], r["pred_v"])):
        roots = torch.as_tensor(wrists)
        if (roots[:, 2] > 0).all():
            depths = depths_from_v(roots, torch.as_tensor(v)).clamp_min(0.05)
            placed = roots * (depths / roots[:, 2])[:, None]
            out[i] = (placed[1] - placed[0]).numpy()
    return out


def _accel(r: dict[str, np.ndarray], h: int) -> float:
    """Accel_E over every sequence of the split (frames in order, absent frames invalid)."""
    preds, gts, valids = [], [], []
    for s in np.unique(r["sequence"]):
        idx = np.nonzero(r["sequence"] == s)[0]
        idx = idx[np.argsort(r["frame"][idx])]
        if len(idx) < 3:
            continue
        pk, gk = r["pred_kp"][idx, h], r["gt_kp"][idx, h]
        preds.append(pk - pk[:, :1])
        gts.append(gk - gk[:, :1])
        valids.append(r["present"][idx, h] & r["joint_valid"][idx, h].all(-1))
    if not preds:
        return float("nan")
    return float(metrics.accel_error(preds, gts, valids))


def default_eval_dir(ckpt: str | os.PathLike) -> Path:
    """Where ``fourdhands eval`` writes by default: ``eval/<name>`` in the working directory,
    ``<name>`` the checkpoint folder's, led by its run's name for a ``step-NNNNNNN`` folder
    (never inside the checkpoint, which may sit in the installed package)."""
    ckpt = Path(ckpt).resolve()
    name = f"{ckpt.parent.name}-{ckpt.name}" if ckpt.name.startswith("step-") else ckpt.name
    return Path.cwd() / "eval" / name


def evaluate(ckpt: str | os.PathLike, data_specs: list[str], out_dir: str | os.PathLike | None = None,
             batch_size: int = 4, workers: int = 0, progress: bool = True, skip_missing: bool = False,
             mano: str | None = None) -> dict:
    """Evaluate a checkpoint on data specs (folders or ``KIND:PATH``); write ``eval.json``
    and ``eval.md``."""
    net = load_checkpoint(ckpt)
    gap = trained_gap(ckpt)
    results = {"checkpoint": str(ckpt), "protocols": PROTOCOLS, "splits": {}}
    for d in data_specs:
        r = predict_split(net, d, gap, batch_size, workers, progress, skip_missing=skip_missing, mano=mano)
        results["splits"][sequence_name(d)] = {"frames": int(len(r["present"])), "kind": parse_spec(d)[0],
                                               **split_metrics(r)}
    out = ensure_output_dir(out_dir if out_dir is not None else default_eval_dir(ckpt))
    write_json(out / "eval.json", results)
    with atomic_path(out / "eval.md") as tmp:
        tmp.write_text(to_markdown(results))
    results["written"] = [str(out / "eval.json"), str(out / "eval.md")]
    return results


def to_markdown(results: dict) -> str:
    cols = ["mpjpe", "mpvpe", "mrrpe", "mrrpe_placed", "accel", "mpjpe_wrist", "rr_mpjpe", "rr_auc", "pa_mpjpe",
            "pa_auc", "mean_pose_mpjpe", "mean_pose_pa_mpjpe", "mean_v_mrrpe", "orient", "mean_orient"]
    lines = [f"# Evaluation of `{results['checkpoint']}`", "",
             "| split | hand | frames | " + " | ".join(cols) + " |",
             "|---" * (len(cols) + 3) + "|"]
    for split, table in results["splits"].items():
        for hand in ("right", "left", "mean"):
            vals = " | ".join(f"{table[hand][c]:.3f}" if "auc" in c else f"{table[hand][c]:.1f}" for c in cols)
            lines.append(f"| {split} | {hand} | {table['frames']} | {vals} |")
    lines += paper_tables(results)
    lines += ["", "Protocols:", ""] + [f"- `{k}`: {v}" for k, v in results["protocols"].items()]
    return "\n".join(lines) + "\n"


#: Per dataset kind: the paper's table, its columns as (heading, our column, scale), and the
#: paper's own row for it ("Ours"), to read ours against.
PAPER_TABLES = {
    "interhand2.6m": ("Table 2 (InterHand2.6M; Table 1's Accel_E beside it)",
                      (("MPJPE (mm)", "mpjpe", 1.0), ("MPVPE (mm)", "mpvpe", 1.0), ("MRRPE (mm)", "mrrpe", 1.0),
                       ("MRRPE, placed (mm)", "mrrpe_placed", 1.0), ("Accel_E (mm/frame^2)", "accel", 1.0)),
                      "7.49 | 7.72 | 24.58 | - | 2.81 (Table 1, 30 fps, in the paper's mm/s^2)"),
    "dexycb": ("Table 3 (DexYCB)",
               (("R-MPJPE (mm)", "rr_mpjpe", 1.0), ("R-JAUC (%)", "rr_auc", 100.0), ("P-MPJPE (mm)", "pa_mpjpe", 1.0),
                ("P-JAUC (%)", "pa_auc", 100.0)),
               "8.37 | 83.4 | 4.75 | 90.4"),
    "hic": ("Table 4 (HIC, the frames with both hands)",
            (("MPJPE (mm)", "mpjpe", 1.0), ("MPVPE (mm)", "mpvpe", 1.0), ("MRRPE (mm)", "mrrpe", 1.0)),
            "9.32 | 9.93 | 25.26"),
}


def paper_tables(results: dict) -> list[str]:
    """Markdown lines: for each split of a benchmark the paper reports, its row in the
    paper's layout (mean of both hands; single-hand data: the hand present) beside the
    paper's own figures."""
    lines: list[str] = []
    for kind, (title, columns, theirs) in PAPER_TABLES.items():
        splits = {k: v for k, v in results["splits"].items() if v.get("kind") == kind}
        if not splits:
            continue
        lines += ["", f"## In the layout of the paper's {title}", "",
                  "| | " + " | ".join(h for h, _, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
        for split, table in splits.items():
            row = table["mean"]
            lines.append(f"| {split} ({table['frames']} frames) | "
                         + " | ".join(f"{row[c] * k:.2f}" for _, c, k in columns) + " |")
        lines.append(f"| the paper's 4DHands | {theirs} |")
        lines += ["", "Protocols of these columns: as listed below (`mpjpe`, `mpvpe`: IntagHand; `rr_*`, `pa_*`: "
                  "DexYCB's root-relative and Procrustes-aligned)."]
    return lines
