"""The Lambda handler against moto's AWS server: deploy, re-apply, update, delete, refuse.

Every check reads AWS back with plain boto3 calls, not through the handler's own readers.
Resource names start with rtmtest-<run id>; each test deletes what it deployed.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import boto3
import botocore.exceptions
import pytest

from backends.aws_lambda import FunctionNotFound, LambdaSpecError, make_lambda_backends
from backends.aws_lambda import mapping as m
from backends.handlers import ApplyError
from console.config import AwsSettings
from rtm.cron import parse_schedule
from rtm.documents import Document, load_file
from rtm.kinds.serverless import Trigger
from rtm.schema import FrozenMap

pytestmark = pytest.mark.aws

SAMPLES = Path(__file__).resolve().parent.parent / "sample-specs"
MUTATING = ("Create", "Put", "Add", "Update", "Delete", "Remove")


@pytest.fixture(scope="module")
def aws(aws_endpoint: str):
    return boto3.session.Session(region_name="us-east-1")


@pytest.fixture(scope="module")
def role_arn(aws, run_id: str):
    iam = aws.client("iam")
    name = f"rtmtest-{run_id}-exec"
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }))["Role"]["Arn"]
    yield arn
    iam.delete_role(RoleName=name)


@pytest.fixture
def handler(aws_endpoint: str, role_arn: str):
    backends, handlers = make_lambda_backends(AwsSettings(("us-east-1",), (), aws_endpoint, role_arn))
    yield handlers["function"]
    for backend in backends:
        backend.close()


@pytest.fixture
def calls(handler) -> Counter:
    """Counts the AWS operations the handler makes: registered on the sessions before any
    client exists (clients copy the session's hooks when they are created)."""
    counter: Counter = Counter()
    for backend in handler.backends:
        backend.clients.session.events.register("before-call", lambda model, **_: counter.update([model.name]))
    return counter


@pytest.fixture
def function(handler, run_id: str):
    """A unique function name; whatever a test deployed under it is deleted afterwards."""
    name = f"rtmtest-{run_id}-{uuid.uuid4().hex[:6]}"
    yield name
    try:
        handler.delete(name)
    except FunctionNotFound:
        pass


def sample(name: str, **changes) -> Document:
    document = load_file(SAMPLES / "serverless-runtime.yaml").documents[0]
    spec = dataclasses.replace(document.get("ServerlessRuntime"), name=name, **changes)
    return dataclasses.replace(document, specs=FrozenMap({"ServerlessRuntime": spec}))




def rules_of(aws, function: str) -> list[dict]:
    return aws.client("events").list_rules(NamePrefix=m.rule_prefix(function))["Rules"]


def apis_of(aws, function: str) -> list[dict]:
    return [a for a in aws.client("apigatewayv2").get_apis()["Items"] if (a.get("Tags") or {}).get(m.FUNCTION_TAG) == function]


def statements_of(aws, function: str) -> list[dict]:
    try:
        return json.loads(aws.client("lambda").get_policy(FunctionName=function)["Policy"])["Statement"]
    except aws.client("lambda").exceptions.ResourceNotFoundException:
        return []


def inventory(aws, function: str) -> dict:
    """Everything AWS holds for the function's triggers, as counts and keys."""
    apigw = aws.client("apigatewayv2")
    apis = apis_of(aws, function)
    return {
        "rules": sorted(r["Name"] for r in rules_of(aws, function)),
        "apis": len(apis),
        "routes": sorted(r["RouteKey"] for a in apis for r in apigw.get_routes(ApiId=a["ApiId"])["Items"]),
        "integrations": sum(len(apigw.get_integrations(ApiId=a["ApiId"])["Items"]) for a in apis),
        "stages": sum(len(apigw.get_stages(ApiId=a["ApiId"])["Items"]) for a in apis),
        "statements": sorted(s["Sid"] for s in statements_of(aws, function)),
    }


# ------------------------------------------------------------------------------------ deploy


def test_deploy_sample_creates_function_rule_api_and_permissions(aws, handler, function: str, role_arn: str) -> None:
    document = sample(function)
    plan = handler.plan(document, SAMPLES)
    assert [c.action for c in plan] == ["create", "create", "create"]
    lines = handler.apply(document, SAMPLES, plan, progress=lambda _line: None)
    assert any(line.startswith(f"created function {function}") for line in lines)

    lam = aws.client("lambda")
    config = lam.get_function_configuration(FunctionName=function)
    assert (config["Runtime"], config["Handler"], config["MemorySize"], config["Timeout"]) == ("python3.12", "main.handler", 256, 30)
    assert config["Environment"]["Variables"] == {"NODE_ENV": "production", "LOG_LEVEL": "info"}
    assert config["VpcConfig"]["SubnetIds"] == ["subnet-12345"] and config["VpcConfig"]["SecurityGroupIds"] == ["sg-12345"]
    assert config["Role"] == role_arn
    assert config["CodeSha256"] == handler.deployment(document, SAMPLES).code.sha256
    function_arn = config["FunctionArn"]

    events = aws.client("events")
    (rule,) = rules_of(aws, function)
    assert rule["ScheduleExpression"] == "cron(0 0 * * ? *)" and rule["State"] == "ENABLED"
    assert [t["Arn"] for t in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]] == [function_arn]

    apigw = aws.client("apigatewayv2")
    (api,) = apis_of(aws, function)
    assert api["ProtocolType"] == "HTTP"
    (integration,) = apigw.get_integrations(ApiId=api["ApiId"])["Items"]
    assert (integration["IntegrationType"], integration["PayloadFormatVersion"], integration["IntegrationUri"]) == ("AWS_PROXY", "2.0", function_arn)
    (route,) = apigw.get_routes(ApiId=api["ApiId"])["Items"]
    assert route["RouteKey"] == "POST /api/function" and route["Target"] == f"integrations/{integration['IntegrationId']}"
    (stage,) = apigw.get_stages(ApiId=api["ApiId"])["Items"]
    assert stage["StageName"] == "$default" and stage["AutoDeploy"] is True

    permissions = {s["Principal"]["Service"]: s["Condition"]["ArnLike"]["AWS:SourceArn"] for s in statements_of(aws, function)}
    assert permissions == {
        "events.amazonaws.com": rule["Arn"],
        "apigateway.amazonaws.com": f"arn:aws:execute-api:us-east-1:{function_arn.split(':')[4]}:{api['ApiId']}/*/POST/api/function",
    }


def test_reapply_changes_nothing(aws, handler, calls: Counter, function: str) -> None:
    document = sample(function)
    handler.apply(document, SAMPLES, handler.plan(document, SAMPLES), progress=lambda _line: None)
    before = inventory(aws, function)
    assert len(before["statements"]) == 2 and before["routes"] == ["POST /api/function"]

    calls.clear()
    plan = handler.plan(document, SAMPLES)
    assert {c.action for c in plan} == {"unchanged"}
    lines = handler.apply(document, SAMPLES, plan, progress=lambda _line: None)
    assert lines == [f"function {function} in us-east-1 already matches the spec"]
    assert calls["GetFunctionConfiguration"] == 2  # plan and apply each read the function
    assert not [name for name in calls if name.startswith(MUTATING)], f"re-apply changed something: {calls}"
    assert inventory(aws, function) == before


def test_update_changes_code_and_memory_in_place(aws, handler, function: str, tmp_path: Path) -> None:
    handler.apply(sample(function), SAMPLES, [], progress=lambda _line: None)
    lam = aws.client("lambda")
    first = lam.get_function_configuration(FunctionName=function)
    triggers_before = inventory(aws, function)

    shutil.copytree(SAMPLES / "functions", tmp_path / "functions")
    (tmp_path / "functions" / "hello" / "main.py").write_text("def handler(event, context):\n    return {'statusCode': 204}\n")
    updated = sample(function, memory=512 * m.MIB)
    plan = handler.plan(updated, tmp_path)
    assert plan[0].action == "update"
    assert {field for field, _old, _new in plan[0].diff} == {"memory_mb", "code_sha256"}
    assert {c.action for c in plan[1:]} == {"unchanged"}

    lines = handler.apply(updated, tmp_path, plan, progress=lambda _line: None)
    assert any("updated the code" in line for line in lines) and any("memory_mb" in line for line in lines)
    now = lam.get_function_configuration(FunctionName=function)
    assert now["MemorySize"] == 512
    assert now["CodeSha256"] != first["CodeSha256"]
    assert now["CodeSha256"] == handler.deployment(updated, tmp_path).code.sha256
    assert now["FunctionArn"] == first["FunctionArn"]
    assert inventory(aws, function) == triggers_before


def test_changed_triggers_replace_the_old_ones_without_leftovers(aws, handler, function: str) -> None:
    handler.apply(sample(function), SAMPLES, [], progress=lambda _line: None)
    every_five = (Trigger("cron", schedule=parse_schedule("*/5 * * * *")),)
    changed = sample(function, triggers=every_five)
    plan = {c.resource.split(" trigger ")[-1]: c.action for c in handler.plan(changed, SAMPLES)}
    assert plan["cron rate(5 minutes)"] == "create"
    assert plan["cron cron(0 0 * * ? *)"] == "delete"
    assert any(action == "delete" and "http API" in resource for resource, action in plan.items())

    handler.apply(changed, SAMPLES, [], progress=lambda _line: None)
    (rule,) = rules_of(aws, function)
    assert rule["ScheduleExpression"] == "rate(5 minutes)"
    assert apis_of(aws, function) == []
    (statement,) = statements_of(aws, function)
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == rule["Arn"]


def test_list_shows_the_function_with_its_triggers_and_cloudwatch_numbers(aws, handler, function: str) -> None:
    handler.apply(sample(function), SAMPLES, [], progress=lambda _line: None)
    (info,) = [f for f in handler.list() if f.name == function]
    assert (info.target, info.region, info.runtime, info.memory_mb, info.timeout_seconds) == ("aws", "us-east-1", "python3.12", 256, 30.0)
    assert info.triggers == ("http POST /api/function", "cron cron(0 0 * * ? *)")
    assert info.last_modified is not None
    assert (info.invocations, info.errors, info.duration) == (None, None, None)  # never invoked: no data, not zero

    dimensions = [{"Name": "FunctionName", "Value": function}]
    now = datetime.now(timezone.utc)
    aws.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": "Invocations", "Dimensions": dimensions, "Value": 3, "Unit": "Count", "Timestamp": now},
        {"MetricName": "Errors", "Dimensions": dimensions, "Value": 1, "Unit": "Count", "Timestamp": now},
        {"MetricName": "Duration", "Dimensions": dimensions, "Value": 100, "Unit": "Milliseconds", "Timestamp": now},
        {"MetricName": "Duration", "Dimensions": dimensions, "Value": 300, "Unit": "Milliseconds", "Timestamp": now},
    ])
    (info,) = [f for f in handler.list() if f.name == function]
    assert (info.invocations, info.errors) == (3, 1)
    assert info.duration.maximum_seconds == pytest.approx(0.3)
    assert info.duration.average_seconds == pytest.approx(0.2)


def test_polls_reuse_triggers_and_metrics_until_they_age_with_fake_clock(handler, calls: Counter, function: str) -> None:
    now = [1000.0]
    backend = handler.primary
    backend.monotonic = lambda: now[0]
    handler.apply(sample(function), SAMPLES, [], progress=lambda _line: None)

    def poll_triggers() -> tuple[str, ...]:
        calls.clear()
        return next(f for f in backend.poll().items if f.name == function).triggers

    assert poll_triggers() == ("http POST /api/function", "cron cron(0 0 * * ? *)")
    assert calls["ListRules"] and calls["GetApis"] and calls["GetMetricData"]
    now[0] += 29
    poll_triggers()
    assert calls["ListFunctions"] == 1 and not (calls["ListRules"] or calls["GetApis"] or calls["GetMetricData"])

    every_five = (Trigger("cron", schedule=parse_schedule("*/5 * * * *")),)
    handler.apply(sample(function, triggers=every_five), SAMPLES, [], progress=lambda _line: None)
    assert poll_triggers() == ("cron rate(5 minutes)",)  # this process changed it: read again at once

    now[0] += 31
    poll_triggers()
    assert calls["ListRules"] and not calls["GetMetricData"]
    now[0] += 30
    poll_triggers()
    assert calls["GetMetricData"]


def test_describe_and_invoke(handler, function: str) -> None:
    document = sample(function, environment=FrozenMap({"LOG_LEVEL": "info", "DB_PASSWORD": "hunter2"}))
    handler.apply(document, SAMPLES, [], progress=lambda _line: None)
    details = handler.describe(function)
    assert details["environment"] == {"LOG_LEVEL": "info", "DB_PASSWORD": m.MASK}
    assert "hunter2" not in json.dumps(details)
    assert [r["route"] for r in details["triggers"]["http"][0]["routes"]] == ["POST /api/function"]
    assert [c["expression"] for c in details["triggers"]["cron"]] == ["cron(0 0 * * ? *)"]
    assert len(details["permissions"]) == 2

    # moto runs no code without Docker: it echoes the payload and returns no log tail.
    result = handler.invoke(function, {"body": '{"name": "moto"}'})
    assert result.status_code == 200 and result.function_error is None
    assert json.loads(result.payload) == {"body": '{"name": "moto"}'}


# ------------------------------------------------------------------------------------ delete


def test_delete_leaves_nothing_behind(aws, handler, function: str) -> None:
    handler.apply(sample(function), SAMPLES, [], progress=lambda _line: None)
    lines = handler.delete(function)
    assert any("deleted function" in line for line in lines)
    with pytest.raises(aws.client("lambda").exceptions.ResourceNotFoundException):
        aws.client("lambda").get_function(FunctionName=function)
    assert function not in [f["FunctionName"] for f in aws.client("lambda").list_functions()["Functions"]]
    assert inventory(aws, function) == {"rules": [], "apis": 0, "routes": [], "integrations": 0, "stages": 0, "statements": []}
    with pytest.raises(FunctionNotFound):
        handler.delete(function)


# ----------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("changes", [
    {"runtime": "python3.9"},
    {"triggers": (Trigger("cron", schedule=parse_schedule("0 0 1 * 1")),)},
    {"timeout": 901.0},
    {"environment": FrozenMap({"BLOB": "x" * 5000})},
], ids=["deprecated-runtime", "both-day-fields", "timeout-901s", "environment-5kb"])
def test_refused_specs_make_no_aws_call(handler, calls: Counter, function: str, changes: dict) -> None:
    for step in (lambda d: handler.plan(d, SAMPLES), lambda d: handler.apply(d, SAMPLES, [], lambda _line: None)):
        with pytest.raises(LambdaSpecError):
            step(sample(function, **changes))
    assert sum(calls.values()) == 0
    handler.plan(sample(function), SAMPLES)  # the counter does see calls
    assert calls["GetFunctionConfiguration"] == 1


def test_failed_apply_undoes_what_it_created_with_injected_failure(aws, handler, function: str) -> None:
    """moto cannot fail a CreateRoute on its own; a botocore hook makes it fail like AWS would."""
    def refuse(**_kwargs):
        raise botocore.exceptions.ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}}, "CreateRoute")

    handler.primary.clients.session.events.register("before-call.apigatewayv2.CreateRoute", refuse)
    with pytest.raises(ApplyError) as caught:
        handler.apply(sample(function), SAMPLES, [], progress=lambda _line: None)
    assert "TooManyRequestsException" in caught.value.cause and "throttled" in caught.value.hint
    assert caught.value.done == []  # everything it created was undone
    with pytest.raises(aws.client("lambda").exceptions.ResourceNotFoundException):
        aws.client("lambda").get_function(FunctionName=function)
    assert rules_of(aws, function) == [] and apis_of(aws, function) == []
