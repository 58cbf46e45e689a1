"""The 4DHands network: ViT backbone, RAT, SIR, heads, configs (presets and ablations)."""

from .config import ABLATIONS, PRESETS, ModelConfig, model_config
from .network import FourDHands, HandsPrediction

__all__ = ["ABLATIONS", "PRESETS", "ModelConfig", "model_config", "FourDHands", "HandsPrediction"]
