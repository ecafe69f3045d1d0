"""Task-agnostic training and evaluation engine."""
