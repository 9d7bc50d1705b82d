"""Plugins and the registry: entry-point discovery, the version checks, the config-class
field rules, the import probe, and the registry that builds configs and trainers by type name.

Layer 3: imports ``_errors``, ``_contract`` and ``_arrays``."""
