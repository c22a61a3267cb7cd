"""``python -m supervisor`` is the ``jobvisor`` command."""

import sys

from supervisor.cli import main

sys.exit(main())
