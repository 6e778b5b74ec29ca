"""``python -m training.convert``: the same as ``bertjp convert``."""

import sys

from training.convert.cli import main

sys.exit(main())
