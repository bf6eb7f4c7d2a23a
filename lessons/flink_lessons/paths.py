"""Where the lessons' files are: the SQL scenarios and the PyFlink jobs under ``include/``."""

from __future__ import annotations

import os
from pathlib import Path

INCLUDE = Path(os.environ.get("FLINK_LESSONS_INCLUDE") or Path(__file__).resolve().parents[2] / "include")
"""``include/`` of this repository (an editable install), or ``$FLINK_LESSONS_INCLUDE`` (the Airflow image)."""

SQL_DIR = INCLUDE / "sql"
"""One folder per SQL scenario."""

PYFLINK_DIR = INCLUDE / "pyflink"
"""One folder (a Python package) per PyFlink job."""
