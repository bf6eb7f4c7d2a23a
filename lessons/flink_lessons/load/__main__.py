"""``python -m flink_lessons.load``: see :mod:`flink_lessons.load.cli`."""

import sys

from flink_lessons.load.cli import main

sys.exit(main())
