"""Training: the config, the one loop, its objectives, checkpoints and run folders."""
