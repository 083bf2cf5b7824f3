"""Test-time augmentation: images (invertible geometric views, merged predictions) and text
(LLM rewrites of the input, merged classifier predictions), both with entropy-selective TTA."""

from augflow.tta.config import PRESETS, TTAConfig, build_tta, load_tta
from augflow.tta.image import TTA, TTAReport, TTAResult
from augflow.tta.merge import MERGES, entropy, merge
from augflow.tta.transforms import TRANSFORMS

__all__ = ["TTA", "TTAReport", "TTAResult", "TTAConfig", "load_tta", "build_tta", "PRESETS", "MERGES", "merge",
           "entropy", "TRANSFORMS", "TextTTA", "DetectionTTA", "DetectionTTAResult"]


def __getattr__(name):   # TextTTA is light, but keep text imports out of the image path
    if name in ("DetectionTTA", "DetectionTTAResult"):
        from augflow.tta import detection
        return getattr(detection, name)
    if name == "TextTTA":
        from augflow.tta.text import TextTTA
        return TextTTA
    raise AttributeError(name)
