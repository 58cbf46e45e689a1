"""Hand detection and left/right tracking for in-the-wild input."""

from .tracking import Detection, HandTracker

__all__ = ["Detection", "HandTracker"]
