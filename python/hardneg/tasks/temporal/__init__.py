"""The temporal task."""
