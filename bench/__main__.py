"""`python -m bench --scale small|default|100k|1m [--only M,...] [--keep-data] [--repeats N]`."""

import sys

from .main import main

sys.exit(main())
