"""Published adult hand anthropometry: the figures the open hand model is built from.

Segment lengths are joint centre to joint centre, as fractions of the hand length HL
(distal wrist crease to the tip of the middle finger), from

    Buchholz B., Armstrong T. J., Goldstein S. A. (1992). Anthropometric data for
    describing the kinematics of the human hand. *Ergonomics* 35(3), 261-273,
    doi:10.1080/00140139208967812 (radiographs; joint centres at the centre of
    curvature of the proximal bone's head), their table of segment length over hand
    length, as used by the hand models that followed (Buchholz & Armstrong 1992,
    *J. Biomech.* 25(2), 149-162):

    ======== ========== ======== ====== ======
    finger   metacarpal proximal middle distal
    ======== ========== ======== ====== ======
    thumb    0.251      0.196    --     0.158
    index    0.374      0.265    0.143  0.097
    middle   0.373      0.277    0.170  0.108
    ring     0.336      0.259    0.165  0.107
    little   0.295      0.206    0.117  0.093
    ======== ========== ======== ====== ======

The distal segment runs to the fingertip, so that for the middle finger the metacarpal
head lies HL * (1 - 0.277 - 0.170 - 0.108) from the wrist crease. The 21-keypoint wrist
sits at the wrist's centre of rotation instead, in the head of the capitate, about one
capitate length (:data:`CAPITATE`, 0.125 HL, ~23 mm) proximal to the third CMC joint:
the one figure here that is not Buchholz's. It puts the palm length (wrist -> middle MCP)
at (0.373 + 0.125) HL, and with it the finger/palm ratios of InterHand2.6M's
triangulated joints within 7 % (``benchmarks/results/proportions.md``).

Other figures:

- HL = 18.7 cm, the mean of adult men's (~19.0-19.5) and women's (~17.5-18.0) hand
  lengths in the anthropometric surveys (e.g. Ibeachu et al. 2011, *Asian J. Med. Sci.*
  3(8): 19.0 and 17.6 cm).
- The knuckle arc: the fingertips of the extended, adducted fingers fall short of the
  middle one's by 10.7 mm (index), 10.8 mm (ring) and 36.4 mm (little = 10.8 + 25.6),
  Chatzioglou, Pinar & Govsa (2024), *Anat. Cell Biol.* 57(2), 172-182, which sets how
  far each MCP joint sits back from the middle one's.
- Palm breadth at the MCPs ~8.4 cm (Ibeachu et al. 2011: 8.6 cm men, 7.7 cm women), with
  the index and little MCP centres ~1 cm inside the palm's edges.
- Finger girth: the index finger's breadth at its PIP joint, US adults, from the FAA's
  *Human Factors Design Standard* (HFDS), Appendix B, Technical Operations anthropometric
  survey: men 19 / 21 / 23 mm, women 16 / 18 / 21 mm (5th / 50th / 95th percentile). The
  same table gives hand length 180 / 196 / 212 and 163 / 178 / 193 mm (mean of the
  medians 18.7 cm, as HL above) and hand breadth 80 / 88 / 96 and 71 / 77 / 84 mm. These
  figures were read from a public summary of that appendix; the appendix itself could not
  be reached from here. The model takes the mean of the two medians, 19.5 mm
  (:data:`INDEX_PIP_BREADTH`), and scales every finger's flesh radii with it; how girth
  tapers along a finger and differs between fingers is the model's own design, not cited.
"""

from __future__ import annotations

import numpy as np

FINGERS = ("thumb", "index", "middle", "ring", "pinky")

#: Segment lengths over hand length (Buchholz et al. 1992), fingers in :data:`FINGERS`
#: order: metacarpal, proximal, middle, distal. The thumb has no middle phalanx; its
#: "metacarpal" is the CMC -> MCP segment (its 21-keypoint base is the CMC joint).
SEGMENTS = np.array([
    [0.251, 0.196, 0.000, 0.158],
    [0.374, 0.265, 0.143, 0.097],
    [0.373, 0.277, 0.170, 0.108],
    [0.336, 0.259, 0.165, 0.107],
    [0.295, 0.206, 0.117, 0.093],
])
SEGMENTS.setflags(write=False)

HAND_LENGTH = 0.187  # m, distal wrist crease -> middle fingertip
CAPITATE = 0.125  # x HL, third CMC joint -> the wrist's centre of rotation
#: Shortfall of each extended fingertip behind the middle one's (m), Chatzioglou et al.
TIP_SHORTFALL = {"index": 0.0107, "middle": 0.0, "ring": 0.0108, "pinky": 0.0364}
PALM_BREADTH = 0.084  # m, at the MCPs
INDEX_PIP_BREADTH = 0.0195  # m, the index finger across its PIP joint (FAA HFDS)


def palm_length(hand_length: float = HAND_LENGTH) -> float:
    """Wrist (centre of rotation) -> middle MCP, metres."""
    return (SEGMENTS[2, 0] + CAPITATE) * hand_length


def finger_lengths(hand_length: float = HAND_LENGTH) -> np.ndarray:
    """`(5, 3)` metres: each finger's three segments from its 21-keypoint base joint to
    its tip (the thumb: CMC -> MCP -> IP -> tip; the others: MCP -> PIP -> DIP -> tip)."""
    out = SEGMENTS[:, 1:].copy()
    out[0] = SEGMENTS[0, [0, 1, 3]]
    return out * hand_length


def keypoint_ratios() -> np.ndarray:
    """`(6,)`: the five finger lengths (sum of their segments) over the palm length, in
    :data:`FINGERS` order, then the index-to-little MCP spread over the palm length
    (from :data:`PALM_BREADTH` less ~1 cm of flesh each side)."""
    lengths = finger_lengths().sum(1) / palm_length()
    return np.r_[lengths, (PALM_BREADTH - 0.020) / palm_length()]
