"""Training samples: the schema, windows of sequences, augmentation."""

from .dataset import HandWindows
from .sample import SampleConfig, window_frames

__all__ = ["HandWindows", "SampleConfig", "window_frames"]
