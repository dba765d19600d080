"""The `function` runtime handler for AWS Lambda: render, plan, apply, delete, list, describe,
invoke.

Deploys go to the first configured location (the first profile in the first region); list
covers every configured location, and describe / invoke / delete act on the first location
where the function is found. Limits are checked before any AWS call (mapping.check_limits),
so a spec Lambda would refuse is refused here without touching AWS.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends.aws_lambda import mapping as m
from backends.aws_lambda.backend import METRICS_WINDOW_SECONDS, LambdaBackend, parse_last_modified
from backends.aws_lambda.client import AwsCallError, AwsClients
from backends.aws_lambda.journal import Journal
from backends.aws_lambda.triggers import LiveTriggers, TriggerSync, read_live, remove_all, trigger_changes
from backends.base import BackendUnavailable
from backends.handlers import ApplyError, Change
from backends.records import FunctionInfo, to_jsonable

if TYPE_CHECKING:
    from rtm.documents import Document

READY_WAIT_SECONDS = 120.0  # a new or updated function is usually ready within seconds


class FunctionNotFound(LookupError):
    pass


class ReadOnlyRefused(ValueError):
    """The backend was opened read-only."""


@dataclass(frozen=True)
class InvocationResult:
    function: str
    region: str
    status_code: int
    function_error: str | None  # "Unhandled" when the handler raised
    payload: str  # the handler's response, as text
    log_tail: str | None  # the last 4 KB of the log (None: the endpoint returned none)

    def to_json(self) -> dict[str, Any]:
        return to_jsonable(self)


class LambdaHandler:
    resource = "function"
    runtime_kind = "ServerlessRuntime"

    def __init__(
        self,
        backends: Sequence[LambdaBackend],
        *,
        default_role_arn: str | None = None,
        read_only: bool = False,
        today: Callable[[], date] = date.today,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not backends:
            raise ValueError("the Lambda handler needs at least one AWS location")
        self.backends = tuple(backends)
        self.default_role_arn = default_role_arn
        self.read_only = read_only
        self.today = today
        self.sleep = sleep

    @property
    def primary(self) -> LambdaBackend:
        return self.backends[0]

    # ---------------------------------------------------------------------------- render/plan

    def deployment(self, document: Document, base_dir: Path, *, need_role: bool = True) -> m.FunctionDeployment:
        """The checked deployment for a document; LambdaSpecError before any AWS call."""
        return m.build_deployment(document, base_dir, default_role_arn=self.default_role_arn, today=self.today(), need_role=need_role)

    def render(self, document: Document, base_dir: Path) -> dict[str, Any]:
        deployment = self.deployment(document, base_dir, need_role=False)
        location = self.primary.location
        rendered = m.render(deployment, region=location.region)
        return {"target": {"region": location.region, "profile": location.profile, "endpoint": location.endpoint}, **rendered}

    def plan(self, document: Document, base_dir: Path) -> list[Change]:
        deployment = self.deployment(document, base_dir)
        clients = self.primary.clients
        resource = f"function/{deployment.name}"
        configuration = _configuration(clients, deployment.name)
        live = read_live(clients, deployment.name)
        if configuration is None:
            note = f"in {self.primary.location.label}; code {deployment.code.size_bytes} bytes"
            return [Change("create", resource, note=note), *trigger_changes(deployment, live, None)]
        diff = deployment.differences(configuration)
        function = Change("update", resource, diff, note="updated in place") if diff else Change("unchanged", resource)
        return [function, *trigger_changes(deployment, live, configuration["FunctionArn"])]

    # -------------------------------------------------------------------------------- apply

    def apply(self, document: Document, base_dir: Path, changes: list[Change], progress: Callable[[str], None]) -> list[str]:
        """Create or update the function and its triggers. The changes are recomputed from what
        AWS holds now (it may have moved since the plan), so applying twice is harmless."""
        self._writable("apply")
        deployment = self.deployment(document, base_dir)
        clients = self.primary.clients
        label = self.primary.location.label
        configuration = _configuration(clients, deployment.name)  # unreachable: nothing done yet
        journal = Journal(progress)
        step = f"apply function {deployment.name}"
        try:
            if configuration is None:
                step = f"create function {deployment.name}"
                function_arn = self._create(clients, deployment, journal)
            else:
                function_arn = configuration["FunctionArn"]
                step = f"update function {deployment.name}"
                self._update(clients, deployment, configuration, journal)
            step = "set up the triggers"
            TriggerSync(clients, deployment, function_arn, read_live(clients, deployment.name), journal).run()
        except Exception as exc:  # whatever failed, leave nothing half-created
            left = journal.roll_back()
            cause = str(exc) + (f"; could not undo: {', '.join(left)}" if left else "")
            expected = isinstance(exc, (AwsCallError, BackendUnavailable, TimeoutError))
            raise ApplyError(journal.done, step, cause, _hint(exc)) from (None if expected else exc)
        finally:
            self.primary.forget_cached()  # the next poll shows what changed, not a cached past
        return journal.done or [f"function {deployment.name} in {label} already matches the spec"]

    def _create(self, clients: AwsClients, deployment: m.FunctionDeployment, journal: Journal) -> str:
        created = clients.call("lambda", "create_function", **deployment.create_request())
        journal.created(
            f"created function {deployment.name} in {self.primary.location.label} ({deployment.runtime}, "
            f"{deployment.memory_mb} MB, {deployment.timeout_seconds} s, code {deployment.code.sha256})",
            f"function {deployment.name}", lambda: clients.call("lambda", "delete_function", FunctionName=deployment.name))
        self._wait_ready(clients, deployment.name)
        return created["FunctionArn"]

    def _update(self, clients: AwsClients, deployment: m.FunctionDeployment, configuration: dict, journal: Journal) -> None:
        diff = deployment.differences(configuration)
        if any(field in m.CODE_FIELDS for field, _old, _new in diff):
            clients.call("lambda", "update_function_code", FunctionName=deployment.name, ZipFile=deployment.code.zip_bytes, Publish=False)
            journal.did(f"updated the code of {deployment.name} (CodeSha256 {configuration.get('CodeSha256')} -> {deployment.code.sha256})")
            self._wait_ready(clients, deployment.name)
        settings = [field for field, _old, _new in diff if field not in m.CODE_FIELDS]
        if settings:
            clients.call("lambda", "update_function_configuration", **deployment.configuration())
            journal.did(f"updated the configuration of {deployment.name}: {', '.join(settings)}")
            self._wait_ready(clients, deployment.name)

    def _wait_ready(self, clients: AwsClients, name: str) -> None:
        """Lambda refuses further changes while a function is Pending or an update InProgress."""
        deadline = time.monotonic() + READY_WAIT_SECONDS
        while True:
            configuration = clients.call("lambda", "get_function_configuration", FunctionName=name)
            state, update = configuration.get("State", "Active"), configuration.get("LastUpdateStatus", "Successful")
            if state == "Failed" or update == "Failed":
                reason = configuration.get("StateReason") or configuration.get("LastUpdateStatusReason") or "no reason given"
                raise AwsCallError(clients.location, "get_function_configuration", "FunctionFailed", f"function {name} failed: {reason}")
            if state != "Pending" and update != "InProgress":
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"function {name} was still {state.lower()} after {READY_WAIT_SECONDS:g} s")
            self.sleep(1.0)

    # ------------------------------------------------------------------------------- delete

    def delete(self, name: str, *, with_disk: bool = False) -> list[str]:
        """Delete the function, its rules (and their targets), its HTTP API (routes,
        integration, stage) and its permissions (which go with the function), and its log
        group. `with_disk` does not apply to functions."""
        self._writable("delete")
        backend, configuration = self._locate(name, required=False)
        clients = backend.clients
        live = read_live(clients, name)
        if configuration is None and not live.rules and not live.apis:
            raise FunctionNotFound(f"no function {name} in {self._labels()}")
        journal = Journal()
        try:
            remove_all(clients, name, live, journal)
            if configuration is not None:
                clients.call("lambda", "delete_function", FunctionName=name)
                journal.did(f"deleted function {name} from {backend.location.label}")
            _delete_log_group(clients, name, journal)
        finally:
            backend.forget_cached()
        return journal.done

    # --------------------------------------------------------------------------- list/describe

    def list(self) -> list[FunctionInfo]:
        """Functions in every configured location, with metrics fetched now; an unreachable
        location is left out unless all are unreachable."""
        found: list[FunctionInfo] = []
        failures: list[BackendUnavailable] = []
        for backend in self.backends:
            try:
                found.extend(backend.functions(fresh=True))
            except BackendUnavailable as exc:
                failures.append(exc)
        if failures and len(failures) == len(self.backends):
            raise failures[0]
        return found

    def describe(self, name: str) -> dict[str, Any]:
        backend, configuration = self._locate(name)
        assert configuration is not None
        live = read_live(backend.clients, name)
        metrics = backend.metrics([name])[name]
        vpc = configuration.get("VpcConfig") or {}
        last_modified = parse_last_modified(configuration.get("LastModified"))
        return {
            "name": name,
            "target": "aws",
            "location": {"region": backend.location.region, "profile": backend.location.profile, "endpoint": backend.location.endpoint},
            "arn": configuration.get("FunctionArn"),
            "state": configuration.get("State"),
            "runtime": configuration.get("Runtime"),
            "handler": configuration.get("Handler"),
            "memory_mb": configuration.get("MemorySize"),
            "timeout_seconds": configuration.get("Timeout"),
            "role": configuration.get("Role"),
            "environment": m.mask_environment((configuration.get("Environment") or {}).get("Variables") or {}),
            "vpc": {"subnets": vpc.get("SubnetIds") or [], "security_groups": vpc.get("SecurityGroupIds") or [], "vpc_id": vpc.get("VpcId") or None},
            "code": {"sha256": configuration.get("CodeSha256"), "size_bytes": configuration.get("CodeSize")},
            "last_modified": datetime.fromtimestamp(last_modified, timezone.utc).isoformat() if last_modified is not None else None,
            "triggers": _describe_triggers(live),
            "permissions": [{"sid": s.sid, "principal": s.principal, "source_arn": s.source_arn} for s in live.statements],
            "metrics": {"window_hours": METRICS_WINDOW_SECONDS // 3600, "invocations": metrics.invocations, "errors": metrics.errors,
                        "duration": to_jsonable(metrics.duration)},
        }

    # ------------------------------------------------------------------------------- invoke

    def invoke(self, name: str, payload: bytes | str | dict | list | None = None) -> InvocationResult:
        """Run the function once, synchronously, and return its response and log tail."""
        self._writable("invoke")
        backend, _configuration = self._locate(name)
        if isinstance(payload, bytes):
            data = payload
        elif isinstance(payload, str):
            data = payload.encode()
        else:
            data = json.dumps(payload if payload is not None else {}).encode()
        response = backend.clients.call("lambda", "invoke", FunctionName=name, Payload=data, LogType="Tail")
        body = response["Payload"].read().decode("utf-8", "replace")
        log_result = response.get("LogResult")
        log_tail = base64.b64decode(log_result).decode("utf-8", "replace") if log_result else None
        return InvocationResult(name, backend.location.region, int(response.get("StatusCode", 0)), response.get("FunctionError"), body, log_tail)

    # ------------------------------------------------------------------------------ helpers

    def _locate(self, name: str, *, required: bool = True) -> tuple[LambdaBackend, dict | None]:
        """The first location holding the function, with its configuration. Without it:
        FunctionNotFound, or (required=False) the primary location and None. An unreachable
        location that might hold it makes the answer uncertain: BackendUnavailable."""
        unreachable: BackendUnavailable | None = None
        for backend in self.backends:
            try:
                configuration = _configuration(backend.clients, name)
            except BackendUnavailable as exc:
                unreachable = unreachable or exc
                continue
            if configuration is not None:
                return backend, configuration
        if unreachable is not None:
            raise unreachable
        if required:
            raise FunctionNotFound(f"no function {name} in {self._labels()}")
        return self.primary, None

    def _labels(self) -> str:
        return ", ".join(b.location.label for b in self.backends)

    def _writable(self, action: str) -> None:
        if self.read_only:
            raise ReadOnlyRefused(f"the Lambda backend is read-only: {action} was not run")


def _configuration(clients: AwsClients, name: str) -> dict | None:
    try:
        return clients.call("lambda", "get_function_configuration", FunctionName=name)
    except AwsCallError as exc:
        if exc.not_found:
            return None
        raise


def _delete_log_group(clients: AwsClients, name: str, journal: Journal) -> None:
    try:
        clients.call("logs", "delete_log_group", logGroupName=f"/aws/lambda/{name}")
    except AwsCallError as exc:
        if exc.not_found:
            return  # never invoked, or logs kept elsewhere
        raise
    journal.did(f"deleted log group /aws/lambda/{name}")


def _describe_triggers(live: LiveTriggers) -> dict[str, Any]:
    cron = [{"expression": r.expression, "rule": r.name, "rule_arn": r.arn, "state": r.state,
             "targets": [arn for _id, arn in r.targets]} for r in live.rules]
    http = [{
        "api_id": api.api_id,
        "endpoint": api.endpoint,
        "stage": {"name": m.DEFAULT_STAGE, "auto_deploy": api.auto_deploy} if api.auto_deploy is not None else None,
        "routes": [{"route": r.route_key, "url": api.endpoint + r.route_key.split(" ", 1)[1], "target": r.target} for r in api.routes],
        "integrations": [{"id": i.integration_id, "type": i.integration_type, "uri": i.uri, "payload_format": i.payload_format} for i in api.integrations],
    } for api in live.apis]
    return {"http": http, "cron": cron}


def _hint(exc: Exception) -> str:
    if isinstance(exc, BackendUnavailable):
        return exc.availability.hint
    if isinstance(exc, TimeoutError):
        return "apply again later; `describe` shows the function's state"
    code = getattr(exc, "code", "")
    if code.startswith("AccessDenied"):
        return f"the credentials lack the IAM permission for {exc.operation}"  # type: ignore[attr-defined]
    if code == "InvalidParameterValueException" and "role" in str(exc).lower():
        return "the execution role must exist and trust lambda.amazonaws.com (it can take a few seconds after creating it)"
    if code == "ResourceConflictException":
        return "another change to the function is in progress: apply again in a moment"
    if code in ("TooManyRequestsException", "ThrottlingException", "LimitExceededException"):
        return "AWS throttled or limited the request: apply again later, or raise the quota"
    return ""
