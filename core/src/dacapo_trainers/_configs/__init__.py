"""Config files and schema: the cattrs converter with DaCapo's ``__type__`` tag, loading
YAML/JSON/TOML files, the run config, the JSON Schema.

Layer 4: imports the layers below."""
