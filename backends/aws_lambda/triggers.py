"""A function's triggers as AWS holds them, compared with a deployment and brought in line.

What rtm-console manages is found by name and tag, never by guessing:
- EventBridge rules named `rule_name(function, expression)`: the name embeds a hash of the
  function and the expression, so a rule is ours exactly when its name matches its own
  expression;
- HTTP APIs tagged `rtm:managed-by=rtm-console` and `rtm:function=<function>` (one per function);
- permission statements whose id starts with `rtm-` in the function's resource policy.

Planning (`trigger_changes`) and applying (`TriggerSync`) use the same comparisons, so a plan
that says "unchanged" means apply makes no call, and re-applying never adds a second rule,
route, integration or permission: each is looked up first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from backends.aws_lambda import mapping as m
from backends.aws_lambda.client import AwsCallError, AwsClients
from backends.aws_lambda.journal import Journal
from backends.handlers import Change


@dataclass(frozen=True)
class LiveRule:
    name: str
    arn: str
    expression: str
    state: str
    targets: tuple[tuple[str, str], ...]  # (target id, target ARN)


@dataclass(frozen=True)
class LiveIntegration:
    integration_id: str
    integration_type: str
    uri: str
    payload_format: str


@dataclass(frozen=True)
class LiveRoute:
    route_id: str
    route_key: str
    target: str


@dataclass(frozen=True)
class LiveApi:
    api_id: str
    endpoint: str
    integrations: tuple[LiveIntegration, ...]
    routes: tuple[LiveRoute, ...]
    auto_deploy: bool | None  # None: no $default stage

    def route(self, key: str) -> LiveRoute | None:
        return next((r for r in self.routes if r.route_key == key), None)

    def proxy_integration(self, function_arn: str) -> LiveIntegration | None:
        return next((i for i in self.integrations if i.integration_type == "AWS_PROXY" and i.uri == function_arn), None)


@dataclass(frozen=True)
class Statement:
    sid: str
    principal: str
    source_arn: str


@dataclass(frozen=True)
class LiveTriggers:
    rules: tuple[LiveRule, ...] = ()
    apis: tuple[LiveApi, ...] = ()  # normally at most one
    statements: tuple[Statement, ...] = ()  # rtm- statements only

    @property
    def api(self) -> LiveApi | None:
        return self.apis[0] if self.apis else None

    def rule(self, name: str) -> LiveRule | None:
        return next((r for r in self.rules if r.name == name), None)

    def statement(self, sid: str) -> Statement | None:
        return next((s for s in self.statements if s.sid == sid), None)

    def descriptions(self) -> tuple[str, ...]:
        http = [f"http {r.route_key}" for api in self.apis for r in api.routes]
        return (*sorted(http), *sorted(f"cron {r.expression}" for r in self.rules))


# ----------------------------------------------------------------------------------- reading


def read_live(clients: AwsClients, function: str) -> LiveTriggers:
    apis = tuple(read_api(clients, item) for item in managed_api_items(clients, function))
    return LiveTriggers(read_rules(clients, function), apis, read_statements(clients, function))


def read_rules(clients: AwsClients, function: str) -> tuple[LiveRule, ...]:
    rules = []
    for rule in clients.pages("events", "list_rules", "Rules", NamePrefix=m.rule_prefix(function)):
        expression = rule.get("ScheduleExpression", "")
        if rule["Name"] != m.rule_name(function, expression):
            continue  # another function's rule sharing the 40-character prefix, or not ours
        targets = tuple((t["Id"], t["Arn"]) for t in clients.pages("events", "list_targets_by_rule", "Targets", Rule=rule["Name"]))
        rules.append(LiveRule(rule["Name"], rule["Arn"], expression, rule.get("State", ""), targets))
    return tuple(rules)


def managed_rules(clients: AwsClients) -> dict[str, list[str]]:
    """function name -> EventBridge expressions of its managed rules, for listings."""
    found: dict[str, list[str]] = {}
    for rule in clients.pages("events", "list_rules", "Rules", NamePrefix=m.RULE_PREFIX):
        expression = rule.get("ScheduleExpression", "")
        for _id, arn in ((t["Id"], t["Arn"]) for t in clients.pages("events", "list_targets_by_rule", "Targets", Rule=rule["Name"])):
            function = arn.split(":function:", 1)[-1].split(":")[0] if ":function:" in arn else None
            if function and rule["Name"] == m.rule_name(function, expression):
                found.setdefault(function, []).append(expression)
    return found


def managed_api_items(clients: AwsClients, function: str | None = None) -> list[dict]:
    """GetApis items tagged as ours (for one function, or all)."""
    items = []
    for item in clients.pages("apigatewayv2", "get_apis", "Items"):
        tags = item.get("Tags") or {}
        if tags.get(m.MANAGED_TAG) == m.MANAGED_VALUE and tags.get(m.FUNCTION_TAG) and (function is None or tags[m.FUNCTION_TAG] == function):
            items.append(item)
    return items


def read_api(clients: AwsClients, item: dict) -> LiveApi:
    api_id = item["ApiId"]
    integrations = tuple(
        LiveIntegration(i["IntegrationId"], i.get("IntegrationType", ""), i.get("IntegrationUri", ""), i.get("PayloadFormatVersion", ""))
        for i in clients.pages("apigatewayv2", "get_integrations", "Items", ApiId=api_id))
    routes = tuple(LiveRoute(r["RouteId"], r["RouteKey"], r.get("Target", ""))
                   for r in clients.pages("apigatewayv2", "get_routes", "Items", ApiId=api_id))
    stage = next((s for s in clients.pages("apigatewayv2", "get_stages", "Items", ApiId=api_id) if s["StageName"] == m.DEFAULT_STAGE), None)
    return LiveApi(api_id, item.get("ApiEndpoint", ""), integrations, routes, None if stage is None else bool(stage.get("AutoDeploy")))


def read_statements(clients: AwsClients, function: str) -> tuple[Statement, ...]:
    try:
        policy = clients.call("lambda", "get_policy", FunctionName=function)["Policy"]
    except AwsCallError as exc:
        if exc.not_found:  # no function, or a function without a resource policy
            return ()
        raise
    statements = []
    for statement in json.loads(policy).get("Statement", []):
        sid = statement.get("Sid", "")
        if not sid.startswith(m.STATEMENT_PREFIX):
            continue
        principal = statement.get("Principal", {})
        service = principal.get("Service", "") if isinstance(principal, dict) else str(principal)
        source = (statement.get("Condition", {}).get("ArnLike", {}) or {}).get("AWS:SourceArn", "")
        statements.append(Statement(sid, service, source))
    return tuple(statements)


# ---------------------------------------------------------------------------------- planning


def _cron_gaps(trigger: m.CronTrigger, rule: LiveRule, live: LiveTriggers, function_arn: str) -> list[str]:
    gaps = []
    if rule.expression != trigger.expression or rule.state != "ENABLED":
        gaps.append("rule")
    if (m.TARGET_ID, function_arn) not in rule.targets:
        gaps.append("target")
    if live.statement(trigger.statement_id) != Statement(trigger.statement_id, "events.amazonaws.com", rule.arn):
        gaps.append("permission")
    return gaps


def _http_gaps(route: m.HttpTrigger, api: LiveApi, live: LiveTriggers, function_arn: str) -> list[str]:
    gaps = []
    integration = api.proxy_integration(function_arn)
    if integration is None or integration.payload_format != m.PAYLOAD_FORMAT:
        gaps.append("integration")
    live_route = api.route(route.route_key)
    if live_route is None:
        return ["route", *gaps]
    if integration is None or live_route.target != f"integrations/{integration.integration_id}":
        gaps.append("route target")
    if api.auto_deploy is not True:
        gaps.append("$default stage")
    source = _route_source_arn(function_arn, api.api_id, route)
    if live.statement(route.statement_id) != Statement(route.statement_id, "apigateway.amazonaws.com", source):
        gaps.append("permission")
    return gaps


def _route_source_arn(function_arn: str, api_id: str, route: m.HttpTrigger) -> str:
    """The execute-api ARN in the function's own partition, region and account."""
    partition, region, account = m.arn_parts(function_arn)
    return m.execute_api_arn(region, account, api_id, route, partition)


def _stale(deployment: m.FunctionDeployment, live: LiveTriggers) -> tuple[list[LiveRule], list[LiveApi], list[LiveRoute], list[Statement]]:
    """What is live but no longer in the spec: rules, whole APIs, routes, statements."""
    wanted_rules = {t.rule_name for t in deployment.cron}
    rules = [r for r in live.rules if r.name not in wanted_rules]
    apis = list(live.apis[1:]) if deployment.http else list(live.apis)
    routes = []
    if deployment.http and live.api is not None:
        keys = {r.route_key for r in deployment.http}
        routes = [r for r in live.api.routes if r.route_key not in keys]
    wanted_sids = {t.statement_id for t in (*deployment.cron, *deployment.http)}
    statements = [s for s in live.statements if s.sid not in wanted_sids]
    return rules, apis, routes, statements


def trigger_changes(deployment: m.FunctionDeployment, live: LiveTriggers, function_arn: str | None) -> list[Change]:
    """One Change per trigger (create / update / unchanged) and per leftover (delete)."""
    prefix = f"function/{deployment.name} trigger"
    changes = []
    for cron in deployment.cron:
        rule = live.rule(cron.rule_name)
        resource = f"{prefix} {cron.describe()}"
        if rule is None or function_arn is None:
            changes.append(Change("create", resource, note=f"EventBridge rule {cron.rule_name}"))
            continue
        gaps = _cron_gaps(cron, rule, live, function_arn)
        changes.append(Change("update", resource, note="fix: " + ", ".join(gaps)) if gaps else Change("unchanged", resource))
    for route in deployment.http:
        resource = f"{prefix} {route.describe()}"
        api = live.api
        if api is None or function_arn is None:
            changes.append(Change("create", resource, note="on a new HTTP API" if api is None else f"on HTTP API {api.api_id}"))
            continue
        gaps = _http_gaps(route, api, live, function_arn)
        if gaps[:1] == ["route"]:
            changes.append(Change("create", resource, note=f"on HTTP API {api.api_id}"))
        else:
            changes.append(Change("update", resource, note="fix: " + ", ".join(gaps)) if gaps else Change("unchanged", resource))
    rules, apis, routes, statements = _stale(deployment, live)
    covered = {m.cron_statement_id(r.name) for r in rules} | {m.http_statement_id(r.route_key) for r in routes}
    for api in apis:
        covered |= {m.http_statement_id(r.route_key) for r in api.routes}
    changes += [Change("delete", f"{prefix} cron {r.expression}", note=f"EventBridge rule {r.name}") for r in rules]
    changes += [Change("delete", f"{prefix} http {r.route_key}") for r in routes]
    changes += [Change("delete", f"function/{deployment.name} http API {a.api_id}", note=", ".join(r.route_key for r in a.routes)) for a in apis]
    changes += [Change("delete", f"function/{deployment.name} permission {s.sid}") for s in statements if s.sid not in covered]
    return changes


# ---------------------------------------------------------------------------------- applying


class TriggerSync:
    """Brings one function's triggers in line with a deployment, recording each step."""

    def __init__(self, clients: AwsClients, deployment: m.FunctionDeployment, function_arn: str, live: LiveTriggers, journal: Journal) -> None:
        self.clients = clients
        self.deployment = deployment
        self.function_arn = function_arn
        self.live = live
        self.journal = journal
        self.name = deployment.name

    def run(self) -> None:
        """Create and fix first, remove leftovers last: a failure midway leaves the old
        triggers working and only this call's creations to undo."""
        for cron in self.deployment.cron:
            self._cron(cron)
        if self.deployment.http:
            self._http()
        self._remove_stale()

    # cron

    def _cron(self, trigger: m.CronTrigger) -> None:
        rule = self.live.rule(trigger.rule_name)
        gaps = _cron_gaps(trigger, rule, self.live, self.function_arn) if rule else ["rule", "target", "permission"]
        if not gaps:
            return
        arn = rule.arn if rule else ""
        if "rule" in gaps:
            arn = self.clients.call("events", "put_rule", **m.put_rule_params(self.name, trigger))["RuleArn"]
            if rule is None:
                self.journal.created(f"created EventBridge rule {trigger.rule_name}: {trigger.expression} -> function {self.name}",
                                     f"rule {trigger.rule_name}", lambda: delete_rule(self.clients, trigger.rule_name, (m.TARGET_ID,)))
            else:
                self.journal.did(f"updated EventBridge rule {trigger.rule_name}: {trigger.expression}")
        if "target" in gaps:
            stray = [target_id for target_id, _arn in (rule.targets if rule else ()) if target_id != m.TARGET_ID]
            if stray:
                self.clients.call("events", "remove_targets", Rule=trigger.rule_name, Ids=stray)
            self.clients.call("events", "put_targets", **m.put_targets_params(trigger, self.function_arn))
            if rule is not None:  # a new rule's target is part of creating it (and of undoing it)
                self.journal.did(f"pointed rule {trigger.rule_name} at function {self.name}")
        self._permission(m.cron_permission_params(self.name, trigger, arn), f"EventBridge rule {trigger.rule_name}")

    # http

    def _http(self) -> None:
        api = self.live.api
        if api is None:
            created = self.clients.call("apigatewayv2", "create_api", **m.create_api_params(self.name))
            api = LiveApi(created["ApiId"], created.get("ApiEndpoint", ""), (), (), None)
            self.journal.created(f"created HTTP API {m.api_name(self.name)} ({api.api_id}) at {api.endpoint}",
                                 f"HTTP API {api.api_id}", lambda: self.clients.call("apigatewayv2", "delete_api", ApiId=api.api_id))
        integration_id = self._integration(api)
        for route in self.deployment.http:
            self._route(api, route, integration_id)
        if api.auto_deploy is None:
            self.clients.call("apigatewayv2", "create_stage", **m.create_stage_params(api.api_id))
            self.journal.did(f"created the auto-deployed {m.DEFAULT_STAGE} stage of API {api.api_id}")
        elif api.auto_deploy is False:
            self.clients.call("apigatewayv2", "update_stage", ApiId=api.api_id, StageName=m.DEFAULT_STAGE, AutoDeploy=True)
            self.journal.did(f"turned on auto-deploy for the {m.DEFAULT_STAGE} stage of API {api.api_id}")
        for route in self.deployment.http:
            source = _route_source_arn(self.function_arn, api.api_id, route)
            self._permission(m.http_permission_params(self.name, route, source), f"route {route.route_key}")

    def _integration(self, api: LiveApi) -> str:
        existing = api.proxy_integration(self.function_arn)
        if existing is not None:
            if existing.payload_format != m.PAYLOAD_FORMAT:
                self.clients.call("apigatewayv2", "update_integration", ApiId=api.api_id, IntegrationId=existing.integration_id,
                                  PayloadFormatVersion=m.PAYLOAD_FORMAT)
                self.journal.did(f"set payload format {m.PAYLOAD_FORMAT} on integration {existing.integration_id}")
            return existing.integration_id
        created = self.clients.call("apigatewayv2", "create_integration", **m.create_integration_params(api.api_id, self.function_arn))
        integration_id = created["IntegrationId"]
        self.journal.created(f"created Lambda proxy integration {integration_id} (payload {m.PAYLOAD_FORMAT})", f"integration {integration_id}",
                             lambda: self.clients.call("apigatewayv2", "delete_integration", ApiId=api.api_id, IntegrationId=integration_id))
        return integration_id

    def _route(self, api: LiveApi, route: m.HttpTrigger, integration_id: str) -> None:
        target = f"integrations/{integration_id}"
        live_route = api.route(route.route_key)
        if live_route is None:
            created = self.clients.call("apigatewayv2", "create_route", **m.create_route_params(api.api_id, route, integration_id))
            route_id = created["RouteId"]
            self.journal.created(f"created route {route.route_key}", f"route {route.route_key}",
                                 lambda: self.clients.call("apigatewayv2", "delete_route", ApiId=api.api_id, RouteId=route_id))
        elif live_route.target != target:
            self.clients.call("apigatewayv2", "update_route", ApiId=api.api_id, RouteId=live_route.route_id, Target=target)
            self.journal.did(f"pointed route {route.route_key} at integration {integration_id}")

    # permissions and leftovers

    def _permission(self, params: dict, source: str) -> None:
        wanted = Statement(params["StatementId"], params["Principal"], params["SourceArn"])
        live = self.live.statement(wanted.sid)
        if live == wanted:
            return
        if live is not None:
            self.clients.call("lambda", "remove_permission", FunctionName=self.name, StatementId=wanted.sid)
        self.clients.call("lambda", "add_permission", **params)
        line = f"allowed {source} to invoke {self.name} ({wanted.sid})"
        if live is None:
            self.journal.created(line, f"permission {wanted.sid}",
                                 lambda: self.clients.call("lambda", "remove_permission", FunctionName=self.name, StatementId=wanted.sid))
        else:
            self.journal.did(line)

    def _remove_stale(self) -> None:
        rules, apis, routes, statements = _stale(self.deployment, self.live)
        for rule in rules:
            delete_rule(self.clients, rule.name, (target_id for target_id, _arn in rule.targets))
            self.journal.did(f"deleted EventBridge rule {rule.name} ({rule.expression})")
        for route in routes:
            self.clients.call("apigatewayv2", "delete_route", ApiId=self.live.api.api_id, RouteId=route.route_id)  # type: ignore[union-attr]
            self.journal.did(f"deleted route {route.route_key}")
        for api in apis:
            self.clients.call("apigatewayv2", "delete_api", ApiId=api.api_id)
            self.journal.did(f"deleted HTTP API {api.api_id}")
        for statement in statements:
            remove_statement(self.clients, self.name, statement.sid)
            self.journal.did(f"removed permission {statement.sid}")


def delete_rule(clients: AwsClients, rule: str, target_ids: Iterable[str]) -> None:
    """A rule's targets must go before the rule."""
    ids = list(target_ids)
    if ids:
        try:
            clients.call("events", "remove_targets", Rule=rule, Ids=ids)
        except AwsCallError as exc:
            if not exc.not_found:
                raise
    clients.call("events", "delete_rule", Name=rule)


def remove_statement(clients: AwsClients, function: str, sid: str) -> None:
    try:
        clients.call("lambda", "remove_permission", FunctionName=function, StatementId=sid)
    except AwsCallError as exc:
        if not exc.not_found:
            raise


def remove_all(clients: AwsClients, function: str, live: LiveTriggers, journal: Journal) -> None:
    """Delete every managed trigger of a function (its permissions go with the function)."""
    for rule in live.rules:
        delete_rule(clients, rule.name, (target_id for target_id, _arn in rule.targets))
        journal.did(f"deleted EventBridge rule {rule.name} ({rule.expression})")
    for api in live.apis:
        clients.call("apigatewayv2", "delete_api", ApiId=api.api_id)
        journal.did(f"deleted HTTP API {api.api_id} ({', '.join(r.route_key for r in api.routes) or 'no routes'})")

