"""Exports: a run's weights in the formats other tools read (DaCapo's weights store, model
packages).

Layer 8: above the run; imports every layer below."""
