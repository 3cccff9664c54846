"""Model backbones of every task. ``hardneg.models.kg`` (and the names below): the KG models of
:mod:`hardneg.tasks.kg.models` — TransE, DistMult, ComplEx, RotatE, an R-GCN encoder."""
from hardneg.tasks.kg import models as kg
from hardneg.tasks.kg.models import MODELS, RGCN, ComplEx, DistMult, KGModel, RotatE, TransE, create_model

__all__ = ["kg", "MODELS", "KGModel", "TransE", "DistMult", "ComplEx", "RotatE", "RGCN", "create_model"]
