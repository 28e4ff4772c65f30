"""QCSBM: quasi-conservative score-based models (Chao et al., ICML 2023) in JAX."""
from .sde import VESDE
from .losses import METHODS, make_loss_fn
from .models import build_model, ScoreModel

__all__ = ["VESDE", "METHODS", "make_loss_fn", "build_model", "ScoreModel"]
