"""Step 3b of ``fourdhands run`` on a sequence: the network's results, in frame order,
through ``--refine`` (:class:`~fourdhands.refine.ClipRefiner`, which holds a window of
frames back) and ``--smooth`` (:class:`~fourdhands.smoothing.HandSmoother`, causal), so
that what is written is what the user asked for. Frame ``k`` of the output is frame ``k``
of the sequence (a result is None where a resumed run has it already).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from .pipeline import FrameResult


class TemporalStage:
    """``push`` the network's results (and each frame's detector landmarks with
    :meth:`landmarks`), get back those now final; :meth:`finish` at the end."""

    def __init__(self, net, refine: bool, smooth: bool, fps: float | None, refine_config=None):
        models = {"right": net.right_model, "left": net.left_model}
        self.refiner = self.smoother = None
        if refine:
            from .refine import ClipRefiner

            self.refiner = ClipRefiner(models, refine_config)
        if smooth:
            from .smoothing import HandSmoother

            self.smoother = HandSmoother(models=models)
        self.fps = float(fps or 30.0)  # a folder of frames has no rate: taken as 30 fps
        self.pushed = self.released = 0
        self.seconds = {"refine": 0.0, "smooth": 0.0}
        self._landmarks: dict[int, dict] = {}

    def landmarks(self, index: int, hands) -> None:
        """The detections `(right, left)` of frame ``index``: their landmarks and scores are
        refinement's 2D evidence."""
        if self.refiner is not None:
            self._landmarks[index] = {side: (d.landmarks, d.score) for side, d in zip(("right", "left"), hands)
                                      if d is not None and d.landmarks is not None}

    def push(self, results: list) -> list:
        out = []
        for r in results:
            if self.refiner is None:
                out.append(r)
                continue
            t0 = time.perf_counter()
            out += self.refiner.push(r, self._landmarks.pop(self.pushed, {}))
            self.pushed += 1
            self.seconds["refine"] += time.perf_counter() - t0
        return self._release(out)

    def finish(self) -> list:
        if self.refiner is None:
            return []
        t0 = time.perf_counter()
        out = self.refiner.finish()
        self.seconds["refine"] += time.perf_counter() - t0
        return self._release(out)

    def summary(self) -> dict:
        """What ``summary.json`` says of this stage: each refinement term per frame, before
        and after, the frames whose depth was an outlier (slid back along the ray), and the
        seconds each part took."""
        report = {"refine": self.refiner is not None, "smooth": self.smoother is not None,
                  "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}
        if self.refiner is not None:
            r = self.refiner.report
            n = max(r["frames"], 1)
            report["refinement"] = {
                "frames": r["frames"], "windows": r["windows"], "notes": r["notes"],
                "fallback_windows": len(r["fallbacks"]), "depth_outliers": r["depth_outliers"],
                "terms_per_frame": {k: {"before": round(r["before"][k] / n, 6), "after": round(r["after"][k] / n, 6)}
                                    for k in r["before"]}}
        return report

    def _release(self, results: list) -> list:
        out = []
        for r in results:
            index = self.released
            self.released += 1
            out.append(self._smooth(r, index) if self.smoother is not None and r is not None else r)
        return out

    def _smooth(self, r: FrameResult, index: int) -> FrameResult:
        t0 = time.perf_counter()
        params = self.smoother.update(index / self.fps, r)
        hands = {side: dataclasses.replace(r.hands[side], **{k: np.asarray(v, np.float64) for k, v in p.items()})
                 for side, p in params.items()}
        v = hands["left"].keypoints_3d[0] - hands["right"].keypoints_3d[0] if len(hands) == 2 else None
        self.seconds["smooth"] += time.perf_counter() - t0
        return dataclasses.replace(r, hands=hands, v=v)
