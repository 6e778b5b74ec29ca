"""Training with TF Model Garden: experiment configs, preflight, the local trainer, the
Cloud TPU launcher and conversion to transformers."""
