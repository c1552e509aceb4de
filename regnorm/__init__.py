"""Shared helpers for the course notebooks: data, the seed's models, training loops, plots, widgets."""
