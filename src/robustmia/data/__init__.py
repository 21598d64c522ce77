"""Datasets (images in [0, 1] plus integer labels), where they lie, splits and augmentation.

- ``datasets``: loading (``load_dataset``, ``ImageSet``, ``DATASETS``);
- ``locations``: where each dataset's files lie, checked without loading anything;
- ``splits``: members / non-members / reference pool;
- ``transforms``: batched training-time augmentation.
"""
