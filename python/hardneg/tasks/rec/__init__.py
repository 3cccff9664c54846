"""The rec task."""
