"""What the Flink sensors share: one cached REST hook for every poke, and the outage record across pokes."""

from __future__ import annotations

import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.configuration import conf
from airflow.triggers.base import BaseTrigger

from airflow_flink_provider.links.flink_ui import FlinkJobLink
from airflow_flink_provider.operators.common import log_job_url, push_job_id
from airflow_flink_provider.protocol.outage import Outage
from airflow_flink_provider.triggers.base import validate_outage_budget

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

OUTAGE_KEY = "flink_outage_started"
"""Task state store key of the start (epoch seconds) of an API outage under way, in reschedule mode."""


class FlinkRestSensor(BaseSensorOperator):
    """A sensor on the Flink REST API: poke, reschedule or deferrable.

    :param deferrable: wait in the triggerer (polling every ``poke_interval`` seconds); default: Airflow's
        ``[operators] default_deferrable``.
    :param flink_conn_id: the ``flink`` REST connection.
    :param outage_budget: seconds an API outage may last before the wait fails; ``None`` for the connection's
        ``outage_budget`` extra (default 60).
    """

    ui_color = "#eaf5e9"
    operator_extra_links = (FlinkJobLink(),)

    def __init__(
        self,
        *,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        flink_conn_id: str = "flink_default",
        outage_budget: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.deferrable = deferrable
        self.flink_conn_id = flink_conn_id
        self.outage_budget = validate_outage_budget(outage_budget)
        self._outage: Outage | None = None
        self._noted: str | None = None

    @cached_property
    def hook(self) -> FlinkRestHook:
        """The REST hook, made once per sensor (one pooled connection for every poke of a poke-mode try)."""
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

        return FlinkRestHook(flink_conn_id=self.flink_conn_id)

    def note_job(self, context: Context, job_id: str) -> None:
        """Record the job id for the Flink UI link and log the job's web UI page, once per sensor (poke mode
        pokes many times in one try).

        :param context: the task's execution context.
        :param job_id: the Flink job id.
        """
        if self._noted != job_id:
            push_job_id(context, job_id)
            log_job_url(self.log, self.flink_conn_id, job_id)
            self._noted = job_id

    def outage_record(self, store: Any) -> Outage:
        """The outage record of this poke: the sensor's own (poke mode), or one rebuilt from the task state store.

        :param store: the task state store in reschedule mode (each poke is a new process), else ``None``.
        """
        if self._outage is not None and store is None:
            return self._outage
        config = self.hook.transport_config
        started = store.get(OUTAGE_KEY) if store is not None else None
        self._outage = Outage(
            config.outage_budget if self.outage_budget is None else self.outage_budget,
            what=f"Flink REST API at {config.base_url}",
            log=self.log,
            clock=time.time,
            started=float(started) if isinstance(started, int | float) else None,
        )
        return self._outage

    def keep_outage(self, store: Any, outage: Outage) -> None:
        """Save the outage's start in the task state store (reschedule mode), or delete it once over.

        :param store: the task state store, or ``None`` (nothing to keep).
        :param outage: this poke's outage record.
        """
        if store is not None and outage.started != store.get(OUTAGE_KEY):
            if outage.started is None:
                store.delete(OUTAGE_KEY)
            else:
                store.set(OUTAGE_KEY, outage.started)

    def execute(self, context: Context) -> Any:
        """Poke or reschedule as usual; when deferrable, poke once and defer to the trigger if not done."""
        if not self.deferrable:
            return super().execute(context)
        result = self.poke(context)
        if not isinstance(result, PokeReturnValue):
            result = PokeReturnValue(is_done=bool(result))
        if result.is_done:
            return result.xcom_value
        self.defer(
            trigger=self.trigger(deadline=time.time() + self.timeout),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + 60),
        )

    def trigger(self, deadline: float) -> BaseTrigger:
        """The trigger that goes on waiting in the triggerer.

        :param deadline: epoch seconds when the wait times out.
        """
        raise NotImplementedError
