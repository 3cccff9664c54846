"""The kg task."""
