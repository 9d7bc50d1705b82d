"""``python -m dacapo_trainers``: the same as the ``dacapo-trainers`` command."""

from ._cli import main

raise SystemExit(main())
