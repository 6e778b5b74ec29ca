import sys

from bertjp_cli import main

sys.exit(main())
