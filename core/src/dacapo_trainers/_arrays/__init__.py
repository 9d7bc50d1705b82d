"""Arrays and zarr: in-memory arrays, axis names, opening and writing zarr containers (zarr 2
and 3, OME-NGFF, DaCapo's prepare_ds layout).

Layer 2: imports ``_errors`` and ``_contract``."""
