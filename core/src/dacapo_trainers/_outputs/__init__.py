"""Outputs and observers: what a run writes and how (atomic writes, checksummed checkpoints,
the locked output folder, stats, loss curve, previews, TensorBoard).

Layer 6: imports the layers below."""
