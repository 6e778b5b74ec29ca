"""``python -m training.importer``: the same as ``bertjp import``."""

import sys

from training.importer.cli import main

sys.exit(main())
