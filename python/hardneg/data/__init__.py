"""Dataset loaders."""
from hardneg.data.kg import load_kg, find_shared_data

__all__ = ["load_kg", "find_shared_data"]
