"""``python -m harness.cli``: the ``harness`` command (data-parallel runs start their ranks so).

Layer: part of ``harness.cli``, the top layer; it imports only ``harness.cli.dispatch``.
"""

import sys

from harness.cli.dispatch import main

sys.exit(main())
