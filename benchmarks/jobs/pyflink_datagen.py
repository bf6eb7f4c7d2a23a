"""The PyFlink job whose submission the benchmark times: datagen into blackhole, unbounded, 1 slot.

It needs no Kafka topic, so the figure is the submission path alone (JVM/Python start-up, job graph,
scheduling), the same for every method compared. The last program argument becomes the job name
(``pipeline.name``): the benchmark finds and cancels its jobs by that name.
"""

import sys

from pyflink.table import EnvironmentSettings, TableEnvironment


def main(argv: list[str]) -> None:
    """Build and submit the job.

    :param argv: program arguments; the last one is the job name.
    """
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    if argv:
        t_env.get_config().set("pipeline.name", argv[-1])
    t_env.execute_sql("CREATE TEMPORARY TABLE src (n BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '5')")
    t_env.execute_sql("CREATE TEMPORARY TABLE snk (n BIGINT) WITH ('connector' = 'blackhole')")
    t_env.execute_sql("INSERT INTO snk SELECT n FROM src")


if __name__ == "__main__":
    main(sys.argv[1:])
