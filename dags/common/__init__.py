"""Helpers shared by the phase 0 and phase 1 DAGs: Variable schema, SQL scenarios, fixtures, comparison.

Everything here is importable without I/O, so the DAG files that use it parse fast. Files are read and
Variables fetched only inside tasks, at run time.
"""
