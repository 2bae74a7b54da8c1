"""``python -m dip``: the ``dip`` command (:func:`dip.cli.main`), for environments without its console script."""

import sys

from dip.cli import main

sys.exit(main())
