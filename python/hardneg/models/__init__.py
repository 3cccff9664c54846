"""Reference backbones. ``hardneg.models.kg``: TransE, DistMult, ComplEx, RotatE (+ an optional R-GCN encoder)."""
from . import kg
from .kg import MODELS, ComplEx, DistMult, KGModel, RGCN, RotatE, TransE, create_model

__all__ = ["kg", "MODELS", "KGModel", "TransE", "DistMult", "ComplEx", "RotatE", "RGCN", "create_model"]
