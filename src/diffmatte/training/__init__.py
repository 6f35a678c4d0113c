"""Training: ``loop`` (the trainer, read top to bottom), ``config`` (TrainConfig, presets, TOML,
``--set``) and ``runlog`` (the metrics log kept in step with the checkpoints). Import the modules
themselves: this face imports nothing, so naming the package does not import torch."""
