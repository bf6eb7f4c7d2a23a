"""5. Pipeline throughput: the phase-0 style job against Kafka's own tools, and a sweep of input rates.

- ``producer_perf``: ``ProducerPerformance`` writing N phase-0 events (payloads from the same events).
- ``consume``: ``ConsumerPerformance`` reading the N-event backlog topic.
- ``pipeline``: the phase-0 style SQL job (Kafka JSON -> filter/projection -> Kafka JSON) draining the same
  backlog. Its rate is input events over the span between the first and the last output message
  (broker append times), i.e. steady state; the same figure over RUNNING -> last output is also given.
- ``load_script``: the project's fixture producer (ProduceToTopicOperator + ``flink_lessons.fixtures``), against
  ``ProducerPerformance`` with the same number of events.
- ``load_command``: the load command (``python -m flink_lessons.load``, the lessons' producer) writing N keyed
  ``orders`` events as fast as it can, against ``ProducerPerformance`` with as many events of the same bytes
  (target: at least 80 %).
- sweep: the job runs while a producer writes at each input rate for a while; per rate the achieved input
  rate, the output throughput, end-to-end latency (output append time - event time) and Flink's
  back-pressure. The plot shows where back-pressure starts.
"""

from __future__ import annotations

import argparse
import bisect
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests

from benchmarks import env, gateway, kafkatools
from benchmarks.console import say
from benchmarks.core import BenchResult, Target, percentile, ratio
from benchmarks.events import EventFactory, load_templates, order_id_of

SQL_TEMPLATE = Path(__file__).resolve().parent / "sql" / "phase0_kafka.sql.j2"
LOG_APPEND = {"message.timestamp.type": "LogAppendTime"}


def render_job(
    *,
    job_name: str,
    input_topic: str,
    output_topic: str,
    extra_settings: dict[str, str] | None = None,
    sink_options: dict[str, str] | None = None,
) -> str:
    """The phase-0 style Kafka -> Kafka script.

    :param job_name: ``pipeline.name``.
    :param input_topic: the topic it reads from the earliest offset.
    :param output_topic: the topic it writes.
    :param extra_settings: more ``SET`` options (checkpointing...).
    :param sink_options: more sink table options (delivery guarantee...).
    """
    import jinja2

    template = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False).from_string(
        SQL_TEMPLATE.read_text()
    )
    return template.render(
        job_name=job_name,
        input_topic=input_topic,
        output_topic=output_topic,
        bootstrap_servers=env.BOOTSTRAP,
        group_id=f"{job_name}-group",
        extra_settings=extra_settings or {},
        sink_options=sink_options or {},
    )


class Appends:
    """What the output reader saw: order ids and broker append times (ms), in arrival order."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.times: list[int] = []
        self._lock = threading.Lock()

    def add(self, value: bytes, timestamp_ms: int) -> None:
        """Reader callback.

        :param value: the output message.
        :param timestamp_ms: its (log-append) timestamp.
        """
        order_id = order_id_of(value)
        if order_id is not None:
            with self._lock:
                self.ids.append(order_id)
                self.times.append(timestamp_ms)

    def snapshot(self) -> tuple[list[int], list[int]]:
        """Copies of the ids and times."""
        with self._lock:
            return list(self.ids), list(self.times)


@dataclass
class SweepStep:
    """One input rate of the sweep.

    :param target_rate: events/s asked of the producer.
    :param input_rate: events/s it achieved.
    :param throughput: input events/s whose output appeared within the step.
    :param produced: events produced.
    :param expected_outputs: of them, those the filter keeps.
    :param outputs_in_step: outputs appended before the step ended.
    :param outputs_total: outputs of the step's events seen by the end of the drain.
    :param latency_p50_ms: median output append time - event time.
    :param latency_p99_ms: 99th percentile of it.
    :param latency_max_ms: the worst.
    :param drained: every expected output arrived (within the drain timeout).
    :param drain_s: seconds after the step until the last output.
    :param backpressure: per vertex: level and max back-pressured/busy ratios, sampled mid-step.
    """

    target_rate: float
    input_rate: float
    throughput: float
    produced: int
    expected_outputs: int
    outputs_in_step: int
    outputs_total: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    latency_max_ms: float | None
    drained: bool
    drain_s: float
    backpressure: dict[str, Any]


def analyse_step(
    *,
    target_rate: float,
    first_id: int,
    end_id: int,
    start_ms: float,
    end_ms: float,
    batches: Sequence[tuple[int, int]],
    out_ids: Sequence[int],
    out_times: Sequence[int],
    passes: Callable[[int], bool],
    drained: bool,
    drain_s: float,
    backpressure: dict[str, Any] | None = None,
) -> SweepStep:
    """Turn one step's raw observations into its figures (pure).

    :param target_rate: the rate asked for.
    :param first_id: first order id produced in the step.
    :param end_id: one past the last.
    :param start_ms: epoch ms when producing started.
    :param end_ms: epoch ms when it ended.
    :param batches: ``(first order id, ts_ms)`` of each produce batch, ascending; an event's time is its batch's.
    :param out_ids: order ids of output messages.
    :param out_times: their append times (epoch ms), same order.
    :param passes: whether an order id survives the filter.
    :param drained: whether all expected outputs arrived.
    :param drain_s: seconds from the end of producing to the last output.
    :param backpressure: Flink's back-pressure sample.
    """
    produced = end_id - first_id
    expected = sum(1 for i in range(first_id, end_id) if passes(i))
    seconds = max(1e-9, (end_ms - start_ms) / 1000)
    starts = [b[0] for b in batches]
    latencies: list[float] = []
    in_step = 0
    seen: set[int] = set()
    for order_id, appended in zip(out_ids, out_times, strict=True):
        if not first_id <= order_id < end_id or order_id in seen:
            continue
        seen.add(order_id)
        if appended <= end_ms:
            in_step += 1
        index = bisect.bisect_right(starts, order_id) - 1
        if index >= 0:
            latencies.append(appended - batches[index][1])
    share = expected / produced if produced else 0
    return SweepStep(
        target_rate=target_rate,
        input_rate=produced / seconds,
        throughput=(in_step / share / seconds) if share else 0.0,
        produced=produced,
        expected_outputs=expected,
        outputs_in_step=in_step,
        outputs_total=len(seen),
        latency_p50_ms=percentile(latencies, 50) if latencies else None,
        latency_p99_ms=percentile(latencies, 99) if latencies else None,
        latency_max_ms=max(latencies) if latencies else None,
        drained=drained,
        drain_s=drain_s,
        backpressure=backpressure or {},
    )


LATENCY_GROWTH = 5.0
"""A median latency this many times the lowest rate's (and over 100 ms) means events queue up."""


def keeps_up(step: SweepStep, base_p50: float | None) -> bool:
    """Whether the pipeline kept up with a step's input.

    Not keeping up: Flink reports back-pressure (level ``high``), the outputs did not drain, the throughput
    fell below 90 % of the input rate, or events queue: the median latency grew over 100 ms and
    ``LATENCY_GROWTH`` times ``base_p50`` (the phase-0 job is one chained task, so its queue is the input
    topic, which Flink's back-pressure level does not show).

    :param step: the step.
    :param base_p50: the median latency at the lowest rate.
    """
    levels = {str(v.get("level", "")).lower() for v in step.backpressure.values()}
    queued = (
        base_p50 is not None
        and step.latency_p50_ms is not None
        and step.latency_p50_ms > max(100.0, LATENCY_GROWTH * base_p50)
    )
    return not ("high" in levels or not step.drained or step.throughput < 0.9 * step.input_rate or queued)


def saturation(steps: Sequence[SweepStep]) -> tuple[float | None, SweepStep | None]:
    """Where back-pressure starts: the highest input rate kept up with before the first step (in the
    sweep's order of target rates) that was not kept up with, and that step (``None`` if all were).

    :param steps: the sweep's steps, in the order they ran (ascending target rates).
    """
    base = next((s.latency_p50_ms for s in steps if s.latency_p50_ms is not None), None)
    kept: list[float] = []
    for step in steps:
        if not keeps_up(step, base):
            return (max(kept) if kept else None), step
        kept.append(step.input_rate)
    return (max(kept) if kept else None), None


def _ratio(value: Any) -> float | None:
    """A ratio from Flink's JSON: ``None`` for a missing or ``"NaN"`` value."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else number  # NaN


def sample_backpressure(job_id: str) -> dict[str, Any]:
    """Flink's back-pressure view of each vertex: level, and the highest subtask back-pressured, busy and
    idle ratios (``None`` where Flink has no value, e.g. busy for source tasks).

    Flink computes these from task metrics that the REST API refreshes every
    ``metrics.fetcher.update-interval`` (10 s by default): a sample can describe the previous seconds.

    :param job_id: the job.
    """
    sample: dict[str, Any] = {}
    try:
        job = env.get_job(job_id) or {}
        for vertex in job.get("vertices", []):
            data = env.rest("GET", f"/jobs/{job_id}/vertices/{vertex['id']}/backpressure", timeout=10).json()
            subtasks = data.get("subtasks") or []

            def highest(key: str, subtasks: list[dict[str, Any]] = subtasks) -> float | None:
                values = [v for v in (_ratio(s.get(key)) for s in subtasks) if v is not None]
                return max(values) if values else None

            sample[str(vertex.get("name", vertex["id"]))[:60]] = {
                "level": data.get("backpressureLevel") or data.get("backpressure-level") or data.get("status"),
                "backpressured": highest("ratio"),
                "busy": highest("busyRatio"),
                "idle": highest("idleRatio"),
            }
    except (requests.RequestException, ValueError, KeyError) as error:
        sample["error"] = {"level": None, "message": str(error)[:200]}
    return sample


def _start_job(script: str) -> str:
    jobs = gateway.submit(script)
    if len(jobs) != 1:
        raise RuntimeError(f"expected one job from the phase-0 script, got {jobs}")
    return jobs[0]


def measure_backlog(factory: EventFactory, events: int, topic_in: str, result: BenchResult) -> None:
    """ConsumerPerformance and the pipeline over the same N-event backlog topic.

    :param factory: the events.
    :param events: N.
    :param topic_in: the (filled) backlog topic.
    :param result: where figures go.
    """
    consume = kafkatools.consumer_performance(topic_in, events)
    result.samples["consumer_performance"] = consume
    result.figure("consume_events_per_s", consume["fetch.nMsg.sec"], "events/s")
    topic_out = env.unique("bench-out")
    env.create_topics([topic_out], config=LOG_APPEND)
    try:
        appends = Appends()
        reader = kafkatools.OutputReader(topic_out, appends.add).start()
        expected = factory.count_passing(0, events)
        try:
            job_name = env.unique("bench-phase0-backlog")
            began = time.time()
            job = _start_job(render_job(job_name=job_name, input_topic=topic_in, output_topic=topic_out))
            complete = reader.wait_for(expected, stall=30, timeout=max(300, events / 1000))
            backpressure = sample_backpressure(job)
            details = env.get_job(job) or {}
            env.JOBS.cancel(job)
        finally:
            reader.stop()
        ids, times = appends.snapshot()
        if not complete:
            raise RuntimeError(f"the pipeline stalled: {len(ids)}/{expected} outputs after 30 s without progress")
        first, last = min(times), max(times)
        # Flink's own clock of the job: when it switched to RUNNING (the REST view of tasks lags by up to
        # web.refresh-interval, so polling would misplace it).
        running = float((details.get("timestamps") or {}).get("RUNNING") or began * 1000) / 1000
        steady = events / max(1e-3, (last - first) / 1000)
        wall = events / max(1e-3, last / 1000 - running)
        result.figure("pipeline_events_per_s", steady, "events/s")
        result.figure("pipeline_wall_events_per_s", wall, "events/s")
        result.figure("pipeline_vs_consume", ratio(steady, consume["fetch.nMsg.sec"]), "x")
        result.profile["pipeline_backlog"] = {
            "submit_to_running_s": round(running - began, 3),
            "running_to_first_output_s": round(first / 1000 - running, 3),
            "first_to_last_output_s": round((last - first) / 1000, 3),
            "outputs": len(ids),
            "expected_outputs": expected,
            "backpressure_at_end": backpressure,
        }
    finally:
        env.delete_topics([topic_out])


def limited_fixture(path: str, deadline: float) -> Iterator[tuple[Any, bytes]]:
    """The project's ``flink_lessons.fixtures.fixture_messages``, stopped at a deadline.

    :param path: the JSONL fixture.
    :param deadline: ``time.monotonic()`` to stop at.
    """
    from flink_lessons.fixtures import fixture_messages

    for pair in fixture_messages(path):
        if time.monotonic() > deadline:
            return
        yield pair


def project_producer_settings() -> dict[str, Any]:
    """How the project's DAGs configure their fixture producer (task ``produce_fixture``), read from the DAGs.

    :return: ``producer_function``, ``synchronous``, ``poll_timeout`` and ``delivery_callback`` of the first
        DAG that has the task, plus ``dag_id``; ``{}`` when no DAG has it.
    """
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(env.ROOT / "dags"), safe_mode=True, load_op_links=False)
    for dag_id in sorted(bag.dags):
        dag = bag.dags[dag_id]
        if dag.has_task("produce_fixture"):
            task = dag.get_task("produce_fixture")
            return {
                "dag_id": dag_id,
                **{
                    name: getattr(task, name, None)
                    for name in ("producer_function", "synchronous", "poll_timeout", "delivery_callback")
                },
            }
    return {}


def measure_load_script(
    factory: EventFactory, count: int, timeout: float, workdir: Path, *, synchronous: bool | None = None
) -> dict[str, Any]:
    """The project's fixture producer writing ``count`` events: ProduceToTopicOperator configured as in the
    DAGs' ``produce_fixture`` task, with ``flink_lessons.fixtures.fixture_messages`` over a JSONL file.

    Its per-message delivery log goes to a file, as in a task's log.

    :param factory: the events.
    :param count: how many.
    :param timeout: stop producing after this many seconds.
    :param workdir: where the fixture file and the log go.
    :param synchronous: override the DAGs' ``synchronous`` (for the profile), ``None`` keeps it.
    """
    from airflow.providers.apache.kafka.operators.produce import ProduceToTopicOperator

    from benchmarks.taskrun import bench_dag, run_task

    settings = project_producer_settings()
    if settings.get("producer_function") not in (None, "flink_lessons.fixtures.fixture_messages"):
        raise RuntimeError(f"the DAGs' producer changed to {settings['producer_function']!r}: update the benchmark")
    fixture = workdir / "load.jsonl"
    fixture.write_bytes(b"\n".join(factory.lines(count)) + b"\n")
    topic = env.unique("bench-load")
    env.create_topics([topic])
    logger = logging.getLogger("airflow")
    handler = logging.FileHandler(workdir / "load-task.log")
    saved = (logger.handlers[:], logger.propagate, logger.level)
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    sync = settings.get("synchronous", True) if synchronous is None else synchronous
    try:
        with bench_dag("bench_load_script"):
            task = ProduceToTopicOperator(
                task_id="produce_fixture",
                topic=topic,
                producer_function=limited_fixture,
                producer_function_kwargs={"path": str(fixture), "deadline": time.monotonic() + timeout},
                kafka_config_id="kafka_default",
                synchronous=sync,
                poll_timeout=settings.get("poll_timeout", 0),
            )
        if settings.get("delivery_callback") is not None:
            task.delivery_callback = settings["delivery_callback"]
        outcome = run_task(task)
        if outcome.error is not None:
            raise outcome.error
        produced = _topic_size(topic)
    finally:
        logger.handlers, logger.propagate, level = saved
        logger.setLevel(level)
        handler.close()
        env.delete_topics([topic])
    return {
        "events": produced,
        "seconds": outcome.seconds,
        "events_per_s": produced / outcome.seconds,
        "synchronous": sync,
        "configured_as_in": settings.get("dag_id", "(no DAG has produce_fixture: operator defaults)"),
    }


def _topic_size(topic: str) -> int:
    """Messages in partition 0 of a topic (high watermark)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": env.BOOTSTRAP, "group.id": "bench-size"})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        return int(high - low)
    finally:
        consumer.close()


def sweep(factory: EventFactory, rates: Sequence[int], seconds: float, result: BenchResult) -> list[SweepStep]:
    """Run the job at each input rate in turn; stop early once it cannot drain.

    :param factory: the events.
    :param rates: input rates, ascending.
    :param seconds: how long each rate is held.
    :param result: where notes go.
    """
    topic_in, topic_out = env.unique("bench-sweep-in"), env.unique("bench-sweep-out")
    env.create_topics([topic_in])
    env.create_topics([topic_out], config=LOG_APPEND)
    steps: list[SweepStep] = []
    appends = Appends()
    reader = kafkatools.OutputReader(topic_out, appends.add).start()
    producer = kafkatools.ProducerProcess(topic_in, factory.templates)
    try:
        job = _start_job(render_job(job_name=env.unique("bench-phase0-sweep"), input_topic=topic_in,
                                    output_topic=topic_out))  # fmt: skip
        env.wait_running(job, poll=0.2)
        # Warm-up, not recorded: the source's Kafka consumer and the sink's producer start on the first events.
        first, end, *_ = producer.run(rates[0], 3)
        if not reader.wait_for(factory.count_passing(first, end), stall=10, timeout=60):
            result.notes.append(f"sweep warm-up: {reader.count}/{factory.count_passing(first, end)} outputs arrived")
        for rate in rates:
            bp: dict[str, Any] = {}
            sampler = threading.Timer(seconds * 0.9, lambda target, jid: target.update(sample_backpressure(jid)),
                                      args=(bp, job))  # fmt: skip
            sampler.start()
            first, end, start_ms, end_ms, batches, failures = producer.run(rate, seconds)
            sampler.join()
            if failures:
                result.notes.append(f"producer errors at {rate}/s: {failures}")
            expected = factory.count_passing(first, end)
            drain_began = time.monotonic()
            drained = reader.wait_for(
                sum(1 for i in appends.snapshot()[0] if i < first) + expected, stall=10, timeout=max(30, 3 * seconds)
            )
            ids, times = appends.snapshot()
            step = analyse_step(
                target_rate=rate, first_id=first, end_id=end, start_ms=start_ms, end_ms=end_ms, batches=batches,
                out_ids=ids, out_times=times, passes=factory.passes, drained=drained,
                drain_s=time.monotonic() - drain_began, backpressure=bp,
            )  # fmt: skip
            steps.append(step)
            say(
                f"[bench]   rate {rate:>7}/s: in {step.input_rate:,.0f}/s, out {step.throughput:,.0f}/s, "
                f"p50 {step.latency_p50_ms} ms, p99 {step.latency_p99_ms} ms, drained {drained}"
            )
            if not drained:
                result.notes.append(f"sweep stopped at {rate}/s: the job did not drain its input (saturated)")
                break
        env.JOBS.cancel(job)
    finally:
        producer.close()
        reader.stop()
        env.delete_topics([topic_in, topic_out])
    return steps


def measure_load_command(events: int, workdir: Path) -> dict[str, Any]:
    """The load command's producer against ``ProducerPerformance``: ``events`` ``orders`` events each, the
    same values (ProducerPerformance picks them from a file of the load command's own values), one partition.

    :param events: how many events each writes.
    :param workdir: where the payload file goes.
    :return: ``{"load_command": summary, "producer_performance": stats}``.
    """
    from flink_lessons.load.kafka import Kafka
    from flink_lessons.load.keys import KeyChooser, Skew
    from flink_lessons.load.run import LoadSpec, load
    from flink_lessons.load.schemas import Orders

    keys, _ = KeyChooser(10_000, Skew(), seed=1).take(min(events, 100_000))
    payloads = workdir / "orders-payloads.txt"
    payloads.write_bytes(b"\n".join(Orders().values(0, keys, int(time.time() * 1000))) + b"\n")
    topics = [env.unique("bench-pp-orders"), env.unique("bench-load-command")]
    env.create_topics(topics)
    try:
        perf = kafkatools.producer_performance(topics[0], events, payloads)
        spec = LoadSpec(topic=topics[1], rate=None, keys=10_000, count=events, seed=1)
        summary = load(spec, Kafka.from_bootstrap(env.BOOTSTRAP))
        if summary.failed:
            raise RuntimeError(f"the load command failed to deliver {summary.failed} events: {summary.errors}")
        return {"load_command": summary.to_json(), "producer_performance": perf}
    finally:
        env.delete_topics(topics)


def run(opts: argparse.Namespace) -> BenchResult:
    """Measure producer/consumer baselines, the pipeline on a backlog, the load script and the rate sweep.

    :param opts: ``events``, ``load_events``, ``load_timeout``, ``rates``, ``rate_seconds``, ``plot``.
    """
    result = BenchResult(
        "throughput", "phase-0 pipeline vs Kafka's ConsumerPerformance; load script vs ProducerPerformance"
    )
    factory = EventFactory(load_templates())
    result.notes.append(
        f"events: phase-0 fixture shapes ({len(factory.templates)} templates, "
        f"{sum(factory.passing)}/{len(factory.passing)} pass the filter), ~{len(factory.value(10**6, 10**12))} bytes"
    )
    topics: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-thr-") as tmp:
        workdir = Path(tmp)
        payloads = workdir / "payloads.txt"
        payloads.write_bytes(b"\n".join(factory.lines(opts.events)) + b"\n")
        try:
            # Kafka's producer at full speed, N events.
            topics.append(env.unique("bench-pp"))
            env.create_topics(topics[-1:])
            perf = kafkatools.producer_performance(topics[-1], opts.events, payloads)
            result.samples["producer_performance"] = perf
            result.figure("producer_perf_events_per_s", perf["records_per_s"], "events/s")
            # The backlog the consumer tool and the pipeline read.
            topics.append(env.unique("bench-backlog"))
            env.create_topics(topics[-1:])
            kafkatools.produce_all(topics[-1], factory.lines(opts.events, ts_ms=int(time.time() * 1000)))
            measure_backlog(factory, opts.events, topics[-1], result)
            result.figure("pipeline_vs_producer_perf", ratio(result.figures.get("pipeline_events_per_s"),
                                                             perf["records_per_s"]), "x")  # fmt: skip
            # The project's load script against ProducerPerformance with as many events.
            load = measure_load_script(factory, opts.load_events, opts.load_timeout, workdir)
            result.samples["load_script"] = load
            if load["events"] < opts.load_events:
                result.notes.append(
                    f"the load script produced {load['events']} of {opts.load_events} events in --load-timeout "
                    f"{opts.load_timeout:.0f}s; its rate is over those"
                )
            same = perf
            if load["events"] != opts.events:
                topics.append(env.unique("bench-pp-load"))
                env.create_topics(topics[-1:])
                load_payloads = workdir / "load-payloads.txt"
                load_payloads.write_bytes(b"\n".join(factory.lines(max(1, load["events"]))) + b"\n")
                same = kafkatools.producer_performance(topics[-1], max(1, load["events"]), load_payloads)
                result.samples["producer_performance_load_size"] = same
            result.figure("load_script_events_per_s", load["events_per_s"], "events/s")
            result.figure("load_vs_producer_perf", ratio(load["events_per_s"], same["records_per_s"]), "x")
            if load["synchronous"]:  # profile: what the per-message flush costs
                unsynced = measure_load_script(factory, opts.load_events, opts.load_timeout, workdir, synchronous=False)
                result.profile["load_script"] = {
                    "as_configured (synchronous=True: flush after every message)": load,
                    "same with synchronous=False": unsynced,
                }
            # The load command (the lessons' producer) against ProducerPerformance, same events and bytes.
            command = measure_load_command(opts.events, workdir)
            result.samples["load_command"] = command
            # Until the last acknowledgement, as ProducerPerformance counts.
            result.figure("load_command_events_per_s", command["load_command"]["acked_rate"], "events/s")
            result.figure("load_command_vs_producer_perf", ratio(command["load_command"]["acked_rate"],
                          command["producer_performance"]["records_per_s"]), "x")  # fmt: skip
        finally:
            env.delete_topics(topics)
    steps = sweep(factory, opts.rates, opts.rate_seconds, result)
    result.samples["sweep"] = [asdict(step) for step in steps]
    kept_up_to, saturated = saturation(steps)
    result.figure("kept_up_to_events_per_s", kept_up_to, "events/s")
    if saturated is not None:
        result.figure("saturated_at_events_per_s", saturated.target_rate, "events/s")
        result.notes.append(
            f"saturated at the {saturated.target_rate:,.0f}/s step: input reached {saturated.input_rate:,.0f}/s, "
            f"throughput {saturated.throughput:,.0f}/s, latency p50 {saturated.latency_p50_ms} ms"
        )
    else:
        result.figure("saturated_at_events_per_s", f"not within {max(opts.rates):,}/s")
    if steps:
        from benchmarks.plot import plot_sweep

        try:
            path = plot_sweep(steps, opts.plot, title=f"phase-0 pipeline, run {env.RUN_ID}")
            result.samples["plot"] = str(path)
        except ImportError as error:
            result.notes.append(f"no plot: {error} (install the bench extra: uv pip install -e '.[bench]')")
    result.targets = [
        Target("pipeline_vs_consume", ">=", 0.5, ">= 50% of ConsumerPerformance"),
        Target("load_vs_producer_perf", ">=", 0.8, ">= 80% of ProducerPerformance"),
        Target("load_command_vs_producer_perf", ">=", 0.8, "load command >= 80% of ProducerPerformance"),
    ]
    return result
