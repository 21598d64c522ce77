"""Membership inference: per-example signals, attacks that turn them into scores, metrics."""
