"""The run: from a run config to a trained model (inputs opened and checked, start weights,
signals, the training loop, validation, the ``train`` driver).

Layer 7: imports the layers below."""
