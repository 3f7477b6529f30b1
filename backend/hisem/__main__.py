"""``python -m hisem``: the same as the ``hisem`` command."""

import sys

from hisem.cli import main

sys.exit(main())
