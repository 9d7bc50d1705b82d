"""Batch training: the BatchTrainer base that owns optimizer, warmup, snapshot timing and the
``iterate`` loop, batches and their geometry, device transfer, pinned memory and precision.

Layer 5: imports the layers below."""
