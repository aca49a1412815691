"""``python -m tinct`` is the ``tinct`` command."""

from tinct.cli import main

raise SystemExit(main())
