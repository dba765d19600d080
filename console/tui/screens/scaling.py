"""Scaling decisions for a workload: its metrics, each metric's proposal, the decision and its
reason, with the vertical recommendation beside it.

The metrics come from the workload's running containers when the containers backend reports
them; otherwise (or to ask "what if") the operator types utilization percentages. The decision
is rtm's (`decide`, `recommend_vertical`: pure, time passed in), evaluated with the history the
autoscaler keeps for the workload in the data folder, so cooldowns, stabilization windows and
rate policies hold here as they do for the control loop. Evaluating only reads that history (a
"what if" must not count as a recommendation); an executed decision is recorded in it, so the
autoscaler's cooldown starts from it. Executing goes through the action gate, and is offered
only when the containers backend declares and implements `workload.scale`. A workload that is
a Docker Swarm service is scaled by the service's replica count (its running tasks kept), and
the question names the service and its cluster.

"Apply limits" sets the vertical recommendation's limits (`workload.resize`): in place on the
running replicas of a standalone workload (no restart), by one rolling update of a service,
which replaces its tasks (the question says how many).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Input, Label, Select, Static

from backends.docker.errors import DockerRequestError
from backends.docker.swarm.observer import latest as swarm_status
from backends.docker.swarm.tasks import merge_task_rows
from backends.records import ContainerInfo
from console.supervisor.autoscaler import history_path, limits_to_set, load_history, update_history
from console.supervisor.swarm_autoscaling import rolling_update_note
from console.tables import duration
from console.tui import offered_actions
from console.tui.planning import SpecCatalog, SpecSource, horizontal_settings, live_workload, vertical_settings
from console.tui.screens.planning_common import CSS
from rtm.autoscaling import Decision, History, HistoryFormatError, VerticalRecommendation, decide, recommend_vertical
from rtm.quantity import format_cpu, format_memory

if TYPE_CHECKING:
    from console.tui.app import RtmConsole


def decision_table(decision: Decision, metrics: dict[str, float], targets: dict[str, int]) -> Table:
    table = Table(expand=True, box=None, header_style="bold")
    table.add_column("METRIC")
    table.add_column("NOW", justify="right")
    table.add_column("TARGET", justify="right")
    table.add_column("PROPOSES", justify="right")
    for name, target in targets.items():
        value = metrics.get(name)
        proposal = decision.proposals.get(name)
        table.add_row(
            name,
            "-" if value is None else f"{value:.1f}%",
            f"{target}%",
            "-" if proposal is None else f"{proposal} replicas",
        )
    return table


class ScalingScreen(Screen[None]):
    DEFAULT_CSS = CSS.format(name="ScalingScreen")
    BINDINGS = [Binding("escape", "close", "Back"), Binding("f5", "evaluate", "Evaluate")]

    def __init__(self, catalog: SpecCatalog, containers: list[ContainerInfo]) -> None:
        super().__init__()
        self.workloads: list[SpecSource] = [
            source for source in catalog.workloads if source.document.get("AutoScalingPolicy") is not None
        ]
        # A Swarm task is one row: a manager's row of a task gives way to the engine row of its container.
        self.containers = merge_task_rows(containers, ())
        self.decision: Decision | None = None
        self.vertical: VerticalRecommendation | None = None

    @property
    def console(self) -> RtmConsole:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Label("Scaling decisions (Esc: back)", id="title")
        options = [(source.label, index) for index, source in enumerate(self.workloads)]
        with Horizontal(id="controls"):
            yield Select(options, prompt="workload", id="workload", allow_blank=not options,
                         value=options[0][1] if options else Select.NULL)
            yield Input("", placeholder="replicas", id="replicas", type="integer")
            yield Input("", placeholder="cpu %", id="cpu", type="number")
            yield Input("", placeholder="memory %", id="memory", type="number")
            yield Button("Evaluate", id="evaluate", variant="primary")
            yield Button("Execute", id="execute", variant="error", disabled=True)
            yield Button("Apply limits", id="resize", variant="warning", disabled=True)
        with Horizontal(id="results"):
            with VerticalScroll():
                yield Static("", id="horizontal", classes="section")
            with VerticalScroll():
                yield Static("", id="vertical", classes="section")
        yield Static("", id="source", classes="section")

    def on_mount(self) -> None:
        if not self.workloads:
            self.query_one("#source", Static).update(
                "No workload with an AutoScalingPolicy found in the specs folder or the samples."
            )
            return
        self._workload_chosen()
        self.action_evaluate()

    def _source(self) -> SpecSource | None:
        value = self.query_one("#workload", Select).value
        return None if value is Select.NULL else self.workloads[int(value)]  # type: ignore[arg-type]

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "workload":
            self._workload_chosen()
            self.action_evaluate()

    def _workload_chosen(self) -> None:
        source = self._source()
        if source is None:
            return
        live = live_workload(source.document, self.containers)
        replicas = live.replicas if live is not None else source.document.desired_replicas
        self.query_one("#replicas", Input).value = str(replicas)
        for metric in ("cpu", "memory"):
            value = live.metrics.get(metric) if live is not None else None
            self.query_one(f"#{metric}", Input).value = "" if value is None else f"{value:.1f}"
        note = (
            f"metrics from {live.replicas} running replica(s)" if live is not None
            else "no running replica reported: type utilization percentages to see what would be decided"
        )
        self.query_one("#source", Static).update(note)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "evaluate":
            self.action_evaluate()
        elif event.button.id == "execute":
            self.execute()
        elif event.button.id == "resize":
            self.resize()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_evaluate()

    def _number(self, widget_id: str) -> float | None:
        text = self.query_one(f"#{widget_id}", Input).value.strip()
        try:
            return float(text) if text else None
        except ValueError:
            return None

    def action_evaluate(self) -> None:
        source = self._source()
        horizontal_view = self.query_one("#horizontal", Static)
        if source is None:
            return
        policy = source.document.get("AutoScalingPolicy")
        replicas = self._number("replicas")
        metrics = {m: v for m in ("cpu", "memory") if (v := self._number(m)) is not None}
        self.decision = None
        if policy.horizontal is None:
            horizontal_view.update("This policy has no horizontal scaling.")
        elif replicas is None or replicas < 0 or replicas != int(replicas):
            horizontal_view.update("Type the current replica count (a whole number).")
        else:
            settings = horizontal_settings(policy.horizontal, self.console.autoscaler_tolerance)
            now = self.console.services.clock()
            history, history_note = self._stored_history(source.document.name, now)
            try:
                decision, _ = decide(settings, int(replicas), metrics, history, now, assume_applied=False)
            except ValueError as exc:
                horizontal_view.update(f"Cannot decide: {exc}")
            else:
                self.decision = decision
                table = decision_table(decision, metrics, settings.targets)
                summary = Table.grid(padding=(0, 1))
                summary.add_row("decision:", f"{decision.direction} {decision.current_replicas} -> {decision.target_replicas}")
                summary.add_row("reason:", decision.reason)
                summary.add_row("history:", history_note)
                outer = Table.grid()
                outer.add_row(table)
                outer.add_row("")
                outer.add_row(summary)
                horizontal_view.update(outer)
        self._show_vertical(source)
        can_execute = (
            self.decision is not None
            and self.decision.direction != "no_scale"
            and offered_actions.scale_available(self.console.services)
        )
        self.query_one("#execute", Button).disabled = not can_execute

    def _stored_history(self, workload: str, now: float) -> tuple[History, str]:
        """The autoscaler's history of `workload`, and a line saying what it holds."""
        path = history_path(self.console.services.data_dir, workload)
        try:
            history = load_history(path)
        except (HistoryFormatError, OSError) as exc:
            return History(), f"{path} cannot be read ({exc}): evaluated without it, as a fresh autoscaler"
        if not history.recommendations and not history.events:
            return history, "none stored yet: evaluated as a fresh autoscaler"
        last = history.last_event()
        scaled = "no scaling yet" if last is None else (
            f"last scaling {last.from_replicas} -> {last.to_replicas}, {duration(now - last.time)} ago")
        return history, f"{len(history.recommendations)} recommendation(s) stored, {scaled}"

    def _record_scaling(self, workload: str, from_replicas: int, to_replicas: int) -> None:
        """An executed decision goes into the workload's history: the autoscaler's cooldowns
        and rate policies count it, as they count their own."""
        path = history_path(self.console.services.data_dir, workload)
        try:
            update_history(path, lambda history: history.record_event(self.console.services.clock(), from_replicas, to_replicas))
        except (HistoryFormatError, OSError) as exc:  # a damaged file is left as it is, for a look
            self.app.notify(f"the scaling was not recorded in {path}: {exc}", severity="warning", timeout=10)
        if self.is_current:
            self.action_evaluate()

    def _show_vertical(self, source: SpecSource) -> None:
        view = self.query_one("#vertical", Static)
        policy = source.document.get("AutoScalingPolicy")
        if policy.vertical is None:
            view.update("Vertical: this policy has no vertical scaling.")
            return
        live = live_workload(source.document, self.containers)
        container = source.document.get("ContainerRuntime")
        limits = container.resources.limits if container is not None else None
        recommendation = recommend_vertical(
            vertical_settings(policy.vertical),
            live.cpu_samples_millis if live else (),
            live.memory_samples_bytes if live else (),
            limits.cpu if limits is not None else None,
            limits.memory if limits is not None else None,
        )
        self.vertical = recommendation
        self.query_one("#resize", Button).disabled = not (recommendation.changes and offered_actions.is_declared("workload.resize")
                                                          and self.console.services.handler("container") is not None)
        grid = Table.grid(padding=(0, 1))
        grid.add_row("[b]Vertical recommendation[/b]")
        grid.add_row(recommendation.cpu.reason)
        grid.add_row(recommendation.memory.reason)
        view.update(grid)

    def _service_of(self, workload: str) -> tuple[str, int] | None:
        """(cluster, desired replicas) of the workload's service as its manager's last poll saw it, if any."""
        for backend in self.console.services.backend_names("containers"):
            status = swarm_status(backend)
            for service, desired, _running in status.services if status is not None else ():
                if service == workload:
                    return status.cluster, desired
        return None

    def _holding(self, workload: str) -> Any:
        """The cluster's services that run the workload now; on the action's worker thread."""
        swarm = getattr(self.console.services.handler("container"), "swarm", None)
        services = swarm.holding(workload) if swarm is not None else None
        if services is None:
            raise DockerRequestError(f"no Swarm service of workload {workload} answers now")
        return services

    def execute(self) -> None:
        source, decision = self._source(), self.decision
        if source is None or decision is None:
            return
        scale = offered_actions.scaler(self.console.services)
        if scale is None:
            return
        document, name, target = source.document, source.document.name, decision.target_replicas
        service = self._service_of(name)

        def run() -> Any:
            if service is None:
                return scale(name, target, document=document, base_dir=source.path.parent)
            before, after = self._holding(name).scale(name, target)  # the stored spec: running tasks kept
            return [f"service/{name} on {service[0]}: {before} -> {after} replicas (running tasks kept)"]

        question = (f"Scale workload/{name} from {decision.current_replicas} to {target} replicas?" if service is None else
                    f"Scale service/{name} on the Swarm cluster of {service[0]} from {decision.current_replicas} to {target} replicas (running tasks kept)?")
        self.console.run_gated(
            "workload.scale", f"workload/{name}",
            {"replicas": target, "from": decision.current_replicas, "reason": decision.reason, "service": service is not None},
            run, confirm=question,
            on_done=lambda _value: self._record_scaling(name, decision.current_replicas, target),
        )

    def resize(self) -> None:
        """The vertical recommendation's limits: in place on standalone replicas, by a rolling
        update of a service."""
        source, recommendation = self._source(), self.vertical
        handler = self.console.services.handler("container")
        if source is None or recommendation is None or handler is None:
            return
        name = source.document.name
        cpu, memory = limits_to_set(recommendation)
        wanted = ", ".join(f"{what} {text}" for what, value, text in (("cpu", cpu, format_cpu(cpu or 0)), ("memory", memory, format_memory(memory or 0)))
                           if value is not None)
        service = self._service_of(name)
        running = [c.id for c in self.containers if c.workload == name and c.state == "running"]

        def run() -> Any:
            if service is not None:
                replaced = self._holding(name).set_limits(name, cpu, memory)
                return [f"limits set by a {rolling_update_note(name, service[0], replaced)}"]
            return [handler.actions.update_limits(container, cpu_millis=cpu, memory_bytes=memory) for container in running]

        how = rolling_update_note(name, service[0], service[1]) if service is not None else f"in place on {len(running)} running replicas, no restart"
        self.console.run_gated(
            "workload.resize", f"workload/{name}", {"cpu_millis": cpu, "memory_bytes": memory, "service": service is not None},
            run, confirm=f"Set the limits of workload/{name} to {wanted} ({how})?",
        )

    def action_close(self) -> None:
        self.dismiss(None)
