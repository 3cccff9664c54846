"""Dataset loaders."""
from hardneg.data.kg import find_shared_data, load_kg
from hardneg.data.temporal import TemporalEvents, load_temporal_csv

__all__ = ["load_kg", "find_shared_data", "load_temporal_csv", "TemporalEvents"]
