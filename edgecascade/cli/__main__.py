"""`python -m edgecascade.cli`: the `edgecascade` command."""

import sys

from . import main

sys.exit(main())
