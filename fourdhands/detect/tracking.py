"""Left/right identities of detected hands through time.

A per-frame hand detector gives boxes with a handedness label and score; labels flip for
a few frames now and then (most often when hands cross or one is seen edge-on). The
tracker keeps two tracks and decides who is who from *evidence over time*:

- association: detections go to tracks by the distance between each detection and the
  track's predicted position (constant velocity), in units of the track's box size, so
  identities follow the motion through a crossing, whatever the labels say meanwhile;
- side: each track accumulates the detector's handedness as log-odds with a slow decay;
  the two tracks' sides follow the sign of their evidence (and differ: with two tracks,
  the one with the stronger "right" evidence is the right hand);
- a hand not detected stays empty for those frames (nothing is invented); a track
  unseen for ``max_missing`` frames ends, and a later detection starts a new one;
- with more than two detections in a frame, the two most confident are kept and the
  others counted in ``dropped``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from .detection import Detection


@dataclass
class _Track:
    box: np.ndarray
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    evidence: float = 0.0  # log-odds that this is the right hand
    missing: int = 0

    def predicted_centre(self) -> np.ndarray:
        return self.box[:2] + self.velocity * (1 + self.missing)


def _log_odds(d: Detection) -> float:
    p = float(np.clip(d.handedness_score, 0.5, 0.999))
    odds = np.log(p / (1 - p))
    return odds if d.handedness == "right" else -odds


class HandTracker:
    """Feed detections frame by frame; get ``(right, left)`` detections (or None) back.

    Args:
        max_missing: frames a track survives without a detection.
        max_jump: largest move (in box sizes, from the predicted position) that still
            continues a track.
        decay: per-frame factor on the accumulated handedness evidence, so a hand whose
            label is truly wrong at the start is corrected after a while.
    """

    def __init__(self, max_missing: int = 10, max_jump: float = 1.5, decay: float = 0.98):
        self.max_missing, self.max_jump, self.decay = max_missing, max_jump, decay
        self.tracks: list[_Track] = []
        self.dropped = 0

    def update(self, detections: list[Detection]) -> tuple[Detection | None, Detection | None]:
        kept = sorted(detections, key=lambda d: d.score, reverse=True)[:2]
        self.dropped += len(detections) - len(kept)
        assignment = self._associate(kept)
        matched: dict[int, Detection] = {}
        for t_index, d in assignment:
            new = np.asarray(d.box, float)
            if t_index is None:
                self.tracks.append(_Track(new))
                t_index = len(self.tracks) - 1
            else:
                track = self.tracks[t_index]
                track.velocity = (new[:2] - track.box[:2]) / (1 + track.missing)
                track.box, track.missing = new, 0
            track = self.tracks[t_index]
            track.evidence = self.decay * track.evidence + _log_odds(d)
            matched[t_index] = d
        for i, track in enumerate(self.tracks):
            if i not in matched:
                track.missing += 1
                track.evidence *= self.decay
        # end stale tracks, and keep at most two (a new hand replaces the longest-lost one)
        keep = [i for i, t in enumerate(self.tracks) if t.missing <= self.max_missing]
        keep = sorted(keep, key=lambda i: self.tracks[i].missing)[:2]
        keep.sort()
        matched = {keep.index(i): d for i, d in matched.items() if i in keep}
        self.tracks = [self.tracks[i] for i in keep]
        return self._sides(matched)

    def _associate(self, detections: list[Detection]) -> list[tuple[int | None, Detection]]:
        """Pairs (track index or None for a new track, detection) with the least total
        distance; a pair farther than ``max_jump`` box sizes is not a continuation."""
        n_t, n_d = len(self.tracks), len(detections)
        cost = np.full((n_t, n_d), np.inf)
        for i, t in enumerate(self.tracks):
            size = max(float(t.box[2:].max()), 1e-6)
            for j, d in enumerate(detections):
                dist = np.linalg.norm(np.asarray(d.box[:2]) - t.predicted_centre()) / size
                if dist <= self.max_jump:
                    cost[i, j] = dist
        best, best_cost = [], np.inf
        # at most 2 tracks and 2 detections: try every assignment
        for perm in _assignments(n_t, n_d):
            c = sum(cost[i, j] for i, j in perm)
            if not np.isfinite(c):
                continue
            if len(perm) > len(best) or (len(perm) == len(best) and c < best_cost):
                best, best_cost = perm, c
        used = {j for _, j in best}
        pairs: list[tuple[int | None, Detection]] = [(i, detections[j]) for i, j in best]
        pairs += [(None, d) for j, d in enumerate(detections) if j not in used]
        return pairs

    def _sides(self, matched: dict[int, Detection]) -> tuple[Detection | None, Detection | None]:
        if len(self.tracks) == 2:
            right = int(np.argmax([t.evidence for t in self.tracks]))
            order = {right: 0, 1 - right: 1}
        else:
            order = {i: (0 if t.evidence >= 0 else 1) for i, t in enumerate(self.tracks)}
        out: list[Detection | None] = [None, None]
        for i, d in matched.items():
            out[order[i]] = d
        return out[0], out[1]


def _assignments(n_tracks: int, n_dets: int):
    """Every one-to-one set of (track, detection) pairs, the empty one included."""
    result = [[]]
    for k in range(1, min(n_tracks, n_dets) + 1):
        for tracks in itertools.combinations(range(n_tracks), k):
            for dets in itertools.permutations(range(n_dets), k):
                result.append(list(zip(tracks, dets)))
    return result
