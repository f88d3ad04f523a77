"""``python -m autosc.cli``: the same as ``autosc``."""

from . import main

raise SystemExit(main())
