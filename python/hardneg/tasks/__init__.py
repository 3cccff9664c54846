"""Tasks: each owns its data, models, evaluation and recipes; the loop lives once in :mod:`hardneg.training`.

* :mod:`hardneg.tasks.kg`: knowledge-graph completion (triples, filtered ranking).
* :mod:`hardneg.tasks.temporal`: future-link prediction on continuous-time interaction graphs (TGN, TGAT).
* :mod:`hardneg.tasks.linkpred`: static-graph link prediction (GCN, GAT, SEAL).
* :mod:`hardneg.tasks.rec`: top-K recommendation (LightGCN, SASRec, SelfGNN-style).
"""
