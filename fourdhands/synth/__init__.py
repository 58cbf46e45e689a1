"""Synthetic two-hand video with exact ground truth, for training, tests and demos.

- :mod:`~fourdhands.synth.motion`: finger poses within joint limits, smooth trajectories,
  the scenarios and the splits that mix them;
- :mod:`~fourdhands.synth.appearance`: skin, light, backgrounds, blur, noise, JPEG;
- :mod:`~fourdhands.synth.scene`: one sequence rendered, with its ground truth;
- :mod:`~fourdhands.synth.shards`: the on-disk format, its writer and its reader
  (:class:`SyntheticSequences`);
- :mod:`~fourdhands.synth.generate`: the resumable job (:func:`generate`), behind
  ``fourdhands synth``.
"""

from .generate import generate
from .motion import SCENARIOS, SPLITS
from .scene import Sequence, Synthesizer
from .shards import FORMAT, SyntheticSequence, SyntheticSequences

__all__ = ["generate", "SPLITS", "SCENARIOS", "Synthesizer", "Sequence", "SyntheticSequences",
           "SyntheticSequence", "FORMAT"]
