"""Datasets, transforms and offline synthetic data generators."""
