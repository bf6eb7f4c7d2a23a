"""A tiny PyFlink Table API job for the provider's integration tests: datagen into blackhole.

The first program argument becomes the job name (pipeline.name), so a test can see that its arguments
reached the program; the others are ignored.
"""

import sys

from pyflink.table import EnvironmentSettings, TableEnvironment


def main(argv: list[str]) -> None:
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    if argv:
        t_env.get_config().set("pipeline.name", argv[0])
    t_env.execute_sql("CREATE TABLE src (n BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '5')")
    t_env.execute_sql("CREATE TABLE snk (n BIGINT) WITH ('connector' = 'blackhole')")
    t_env.execute_sql("INSERT INTO snk SELECT n FROM src")


if __name__ == "__main__":
    main(sys.argv[1:])
