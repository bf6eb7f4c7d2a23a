"""`make demo`: run the smoke pipeline on the local stack and show its output."""

from __future__ import annotations

from stack.smoke import run_pipeline


def main() -> None:
    """Produce 1,000 events, run the Flink SQL job, print what reached the sink topic."""
    rows, state = run_pipeline(1000)
    print(f"Flink job ended {state}; {len(rows)} rows reached the sink. First five:")
    for row in rows[:5]:
        print(f"  {row}")


if __name__ == "__main__":
    main()
