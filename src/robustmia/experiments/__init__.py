"""Experiments: the pieces composed into audits and studies (training what is missing, caching)."""
