"""`python -m ops` runs the ringloop command line."""

import sys

from ops.cli import main

sys.exit(main())
