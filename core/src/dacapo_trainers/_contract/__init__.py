"""The plugin-facing contract: what a trainer, a config and the objects a trainer is handed
are (Trainer, TrainerConfig and the tagged config bases, the protocols DaCapo's objects satisfy,
the per-iteration stats, the model and geometry helpers every trainer shares).

Layer 1: imports only ``_errors``."""
