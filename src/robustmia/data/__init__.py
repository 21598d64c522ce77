"""Datasets (images in [0, 1] plus integer labels), where they lie, splits and augmentation.

- ``catalog``: which datasets exist (one module each in ``sets/``), where their files lie,
  checked without loading anything;
- ``datasets``: loading (``load_dataset``, ``ImageSet``);
- ``splits``: members / non-members / reference pool;
- ``transforms``: batched training-time augmentation.
"""
