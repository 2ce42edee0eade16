"""`python -m daemon`: the same as the `shenbao` command."""

import sys

from .cli import main

sys.exit(main())
