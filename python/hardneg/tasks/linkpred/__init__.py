"""The linkpred task."""
