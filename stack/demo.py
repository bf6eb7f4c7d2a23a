"""`make demo`: run the phase 0 DAG (Kafka -> Flink SQL -> print sink) with `airflow dags test` and show
what the print sink wrote, as the DAG's observe_print_output task read it from the TaskManager's stdout."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAG_ID = "flink_phase0_print"
PRINTED = re.compile(r"\[TaskManager [^\]]+\] (phase0_print-[0-9a-f]{8}-\d+> .*?)\s+\[airflow\.task")


def main() -> int:
    """Run the DAG; print the observed lines and the outcome; exit with the DAG run's status."""
    airflow = Path(sys.executable).parent / "airflow"
    print(f"[demo] airflow dags test {DAG_ID} (produce 8 orders, submit print.sql.j2, observe, compare, cancel)")
    proc = subprocess.run([str(airflow), "dags", "test", DAG_ID], capture_output=True, text=True, cwd=ROOT, check=False)
    output = proc.stdout + proc.stderr
    lines = PRINTED.findall(output)
    print(f"[demo] the print sink wrote {len(lines)} lines to the TaskManager's stdout:")
    for line in lines:
        print(f"  {line}")
    if proc.returncode == 0:
        print("[demo] they match include/sql/phase0_print/expected/print.txt; the job was cancelled")
    else:
        print("\n".join(output.splitlines()[-40:]))
        print(f"[demo] the DAG run failed (exit {proc.returncode}); full log above")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
