"""Apache Airflow provider for Apache Flink.

``__version__`` is the one place the provider's version is written: ``pyproject.toml`` reads it
(``dynamic = ["version"]``) and the provider info that Airflow registers should report it.
"""

from __future__ import annotations

__version__ = "0.1.0"
