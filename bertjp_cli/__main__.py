"""``python -m bertjp_cli``: the ``bertjp`` command."""

import sys

from bertjp_cli import main

sys.exit(main())
