"""Adapters for libraries people already train with: ``hardneg.integrations.pykeen`` (extra ``hardneg[pykeen]``)
and ``hardneg.integrations.pyg`` (extra ``hardneg[pyg]``). Import the submodule you need."""
