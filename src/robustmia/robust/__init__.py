"""Robustness: attacks in pixel space, certified bounds, and model evaluation."""
