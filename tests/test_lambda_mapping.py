"""The pure half of the Lambda backend: limits, code packaging, names, render output."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
import shutil
import zipfile
from datetime import date
from pathlib import Path

import pytest

from backends.aws_lambda import mapping as m
from backends.aws_lambda.backend import combine_metrics, parse_last_modified
from rtm.cron import parse_schedule
from rtm.documents import Document, load_file
from rtm.kinds.serverless import Trigger
from rtm.schema import FrozenMap

SAMPLES = Path(__file__).resolve().parent.parent / "sample-specs"
ROLE = "arn:aws:iam::123456789012:role/lambda-exec"
TODAY = date(2026, 3, 1)


def sample_document() -> Document:
    return load_file(SAMPLES / "serverless-runtime.yaml", today=TODAY).documents[0]


def with_spec(document: Document, **changes) -> Document:
    spec = dataclasses.replace(document.get("ServerlessRuntime"), **changes)
    return dataclasses.replace(document, specs=FrozenMap({"ServerlessRuntime": spec}))


def build(document: Document, base_dir: Path = SAMPLES, role: str | None = ROLE, today: date = TODAY) -> m.FunctionDeployment:
    return m.build_deployment(document, base_dir, default_role_arn=role, today=today)


def problems_of(document: Document, **kwargs) -> list[m.Problem]:
    with pytest.raises(m.LambdaSpecError) as caught:
        build(document, **kwargs)
    return list(caught.value.problems)


# ------------------------------------------------------------------------------------ limits


def test_sample_maps_to_lambda_settings_and_eventbridge_form() -> None:
    deployment = build(sample_document())
    assert (deployment.name, deployment.runtime, deployment.handler) == ("hello", "python3.12", "main.handler")
    assert (deployment.memory_mb, deployment.timeout_seconds) == (256, 30)
    assert dict(deployment.environment) == {"NODE_ENV": "production", "LOG_LEVEL": "info"}
    assert (deployment.subnet_ids, deployment.security_group_ids) == (("subnet-12345",), ("sg-12345",))
    assert [c.expression for c in deployment.cron] == ["cron(0 0 * * ? *)"]
    assert [h.route_key for h in deployment.http] == ["POST /api/function"]
    assert deployment.role_arn == ROLE


def test_spec_role_wins_over_the_config_default() -> None:
    spec_role = "arn:aws:iam::210987654321:role/from-spec"
    assert build(with_spec(sample_document(), role_arn=spec_role)).role_arn == spec_role


@pytest.mark.parametrize("runtime, today, refused", [
    ("python3.9", date(2025, 12, 15), True),  # the day AWS deprecated it
    ("python3.9", date(2025, 12, 14), False),
    ("python3.8", TODAY, True),
    ("nodejs18.x", TODAY, True),
    ("python3.13", TODAY, False),
])
def test_deprecated_runtimes_are_refused_from_their_deprecation_day(runtime: str, today: date, refused: bool) -> None:
    document = with_spec(sample_document(), runtime=runtime)
    if not refused:
        assert build(document, today=today).runtime == runtime
        return
    (problem,) = problems_of(document, today=today)
    assert problem.field == "runtime" and "deprecated" in problem.message
    assert problem.hint.startswith("use ")


def test_timeout_over_900_seconds_is_refused() -> None:
    (problem,) = problems_of(with_spec(sample_document(), timeout=901.0))
    assert problem.field == "timeout" and "901 s" in problem.message and "1-900" in problem.message


@pytest.mark.parametrize("memory_mb", [64, 10_241])
def test_memory_outside_lambda_range_is_refused(memory_mb: int) -> None:
    (problem,) = problems_of(with_spec(sample_document(), memory=memory_mb * m.MIB))
    assert problem.field == "memory" and "128-10240" in problem.message


def test_environment_over_4_kb_is_refused_with_its_size() -> None:
    big = FrozenMap({"PAYLOAD": "x" * 4100})
    (problem,) = problems_of(with_spec(sample_document(), environment=big))
    assert problem.field == "environment" and "4107 bytes" in problem.message


def test_environment_of_exactly_4096_bytes_is_accepted() -> None:
    exact = FrozenMap({"KK": "v" * 4094})
    assert dict(build(with_spec(sample_document(), environment=exact)).environment)["KK"] == "v" * 4094


def test_reserved_environment_names_are_refused() -> None:
    (problem,) = problems_of(with_spec(sample_document(), environment=FrozenMap({"AWS_REGION": "eu-west-1"})))
    assert problem.field == "environment.AWS_REGION"


def test_cron_restricting_both_day_fields_is_refused_with_a_split_hint() -> None:
    trigger = Trigger("cron", schedule=parse_schedule("0 9 1 * MON"))
    (problem,) = problems_of(with_spec(sample_document(), triggers=(trigger,)))
    assert problem.field == "triggers[0].schedule"
    assert "either" in problem.message
    assert '"0 9 1 * *"' in problem.hint and '"0 9 * * MON"' in problem.hint


def test_every_problem_is_reported_at_once() -> None:
    document = with_spec(sample_document(), runtime="python3.9", timeout=1000.0, memory=64 * m.MIB)
    fields = {p.field for p in problems_of(document)}
    assert fields == {"runtime", "timeout", "memory"}


def test_missing_role_is_refused_with_where_to_set_it() -> None:
    (problem,) = problems_of(sample_document(), role=None)
    assert problem.field == "role_arn" and "aws.role_arn" in problem.hint


def test_two_schedules_that_are_the_same_rule_are_refused() -> None:
    triggers = (Trigger("cron", schedule=parse_schedule("0 0 * * *")), Trigger("cron", schedule=parse_schedule("@daily")))
    (problem,) = problems_of(with_spec(sample_document(), triggers=triggers))
    assert "cron(0 0 * * ? *)" in problem.message


def test_missing_code_folder_is_refused(tmp_path: Path) -> None:
    (problem,) = problems_of(with_spec(sample_document(), code="functions/nowhere"))
    assert problem.field == "code" and "does not exist" in problem.message


# -------------------------------------------------------------------------------------- code


def _copy_hello(tmp_path: Path) -> Path:
    folder = tmp_path / "hello"
    shutil.copytree(SAMPLES / "functions" / "hello", folder)
    return folder


def test_code_zip_is_the_same_whatever_the_file_times(tmp_path: Path) -> None:
    folder = _copy_hello(tmp_path)
    first = m.zip_folder(folder, "hello")
    os.utime(folder / "main.py", (1_000_000, 1_000_000))
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"compiled")
    assert m.zip_folder(folder, "hello") == first


def test_code_zip_changes_with_content_and_executable_bit(tmp_path: Path) -> None:
    folder = _copy_hello(tmp_path)
    original = m.zip_folder(folder, "hello")
    (folder / "main.py").chmod(0o755)
    executable = m.zip_folder(folder, "hello")
    assert executable != original
    (folder / "main.py").write_text("def handler(e, c):\n    return 1\n")
    assert m.zip_folder(folder, "hello") != executable


def test_code_zip_entries_are_sorted_readable_and_dated_1980(tmp_path: Path) -> None:
    folder = _copy_hello(tmp_path)
    (folder / "pkg").mkdir()
    (folder / "pkg" / "b.py").write_text("B = 1\n")
    (folder / "a.py").write_text("A = 1\n")
    with zipfile.ZipFile(io.BytesIO(m.zip_folder(folder, "hello"))) as archive:
        infos = archive.infolist()
        assert [i.filename for i in infos] == ["a.py", "main.py", "pkg/b.py"]
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
        assert all((i.external_attr >> 16) & 0o777 == 0o644 for i in infos)
        assert archive.read("pkg/b.py") == b"B = 1\n"


@pytest.mark.parametrize("target, refusal", [
    ("/etc/passwd", "outside the code folder"),
    ("missing.py", "which does not exist"),
    ("loop", "loops"),
])
def test_a_link_that_leaves_the_folder_dangles_or_loops_is_refused_not_zipped(tmp_path: Path, target: str, refusal: str) -> None:
    folder = _copy_hello(tmp_path)
    (folder / "loop").symlink_to("loop") if target == "loop" else (folder / "data").symlink_to(target)
    with pytest.raises(m.LambdaSpecError) as raised:
        m.zip_folder(folder, "hello")
    (problem,) = raised.value.problems
    assert problem.field == "code" and refusal in problem.message and str(folder) in problem.message


def test_a_link_to_a_file_inside_the_folder_is_zipped_with_its_target_content(tmp_path: Path) -> None:
    folder = _copy_hello(tmp_path)
    (folder / "alias.py").symlink_to("main.py")
    with zipfile.ZipFile(io.BytesIO(m.zip_folder(folder, "hello"))) as archive:
        assert archive.read("alias.py") == (folder / "main.py").read_bytes()


def test_code_sha256_is_lambdas_base64_form(tmp_path: Path) -> None:
    deployment = build(sample_document())
    expected = base64.b64encode(hashlib.sha256(deployment.code.zip_bytes).digest()).decode()
    assert deployment.code.sha256 == expected


def test_a_zip_named_by_the_spec_is_uploaded_as_it_is(tmp_path: Path) -> None:
    archive = tmp_path / "code.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("main.py", "def handler(e, c):\n    return 1\n")
    deployment = build(with_spec(sample_document(), code="code.zip"), base_dir=tmp_path)
    assert deployment.code.zip_bytes == archive.read_bytes()


# ------------------------------------------------------------------------------ names, ARNs


def test_rule_names_are_stable_bounded_and_own_their_expression() -> None:
    long_name = "f" * 64
    name = m.rule_name(long_name, "cron(0 0 * * ? *)")
    assert len(name) <= 64 and name == m.rule_name(long_name, "cron(0 0 * * ? *)")
    assert name != m.rule_name(long_name, "rate(5 minutes)")
    assert name != m.rule_name("f" * 63 + "g", "cron(0 0 * * ? *)")  # same 40-char prefix, other function


@pytest.mark.parametrize("method, path, arn_tail", [
    ("POST", "/api/function", "/*/POST/api/function"),
    ("ANY", "/items/{id}", "/*/*/items/*"),
    ("GET", "/{proxy+}", "/*/GET/*"),
])
def test_execute_api_source_arn(method: str, path: str, arn_tail: str) -> None:
    route = m.HttpTrigger(method, path, m.http_statement_id(f"{method} {path}"))
    assert m.execute_api_arn("eu-west-1", "123456789012", "abc123", route) == f"arn:aws:execute-api:eu-west-1:123456789012:abc123{arn_tail}"


# ------------------------------------------------------------------------------------ output


def test_render_shows_every_call_with_placeholders_and_no_code_bytes() -> None:
    rendered = m.render(build(sample_document()), region="eu-west-1")
    request = rendered["CreateFunction"]
    assert request["Runtime"] == "python3.12" and request["MemorySize"] == 256 and request["Timeout"] == 30
    assert request["VpcConfig"] == {"SubnetIds": ["subnet-12345"], "SecurityGroupIds": ["sg-12345"]}
    assert request["Code"]["ZipFile"].startswith("<zip of functions/hello:")
    calls = [c["call"] for t in rendered["triggers"] for c in t["calls"]]
    assert calls == ["events.put_rule", "events.put_targets", "lambda.add_permission",
                     "apigatewayv2.create_api", "apigatewayv2.create_integration", "apigatewayv2.create_route",
                     "apigatewayv2.create_stage", "lambda.add_permission"]
    cron, http = rendered["triggers"]
    assert cron["calls"][0]["params"]["ScheduleExpression"] == "cron(0 0 * * ? *)"
    integration = http["calls"][1]["params"]
    assert (integration["IntegrationType"], integration["PayloadFormatVersion"]) == ("AWS_PROXY", "2.0")
    assert http["calls"][2]["params"]["RouteKey"] == "POST /api/function"
    assert http["calls"][3]["params"] == {"ApiId": "${api_id}", "StageName": "$default", "AutoDeploy": True}
    assert http["calls"][4]["params"]["SourceArn"] == "arn:aws:execute-api:eu-west-1:${account}:${api_id}/*/POST/api/function"
    json.dumps(rendered)  # JSON-ready


def test_render_masks_secret_looking_environment_values() -> None:
    environment = FrozenMap({"DB_PASSWORD": "hunter2", "API_KEY": "k-123", "KEY_ID": "AKIAABCDEFGHIJKLMNOP", "LOG_LEVEL": "info"})
    rendered = json.dumps(m.render(build(with_spec(sample_document(), environment=environment))))
    assert "hunter2" not in rendered and "k-123" not in rendered and "AKIAABCDEFGHIJKLMNOP" not in rendered
    assert '"LOG_LEVEL": "info"' in rendered


def test_differences_mask_secrets_and_compare_code_by_hash() -> None:
    deployment = build(with_spec(sample_document(), environment=FrozenMap({"TOKEN": "new-secret"})))
    live = {**deployment.configuration(), "Environment": {"Variables": {"TOKEN": "old-secret"}}, "CodeSha256": "old=", "MemorySize": 128}
    diff = {field: (old, new) for field, old, new in deployment.differences(live)}
    assert set(diff) == {"environment", "code_sha256", "memory_mb"}
    assert diff["environment"] == ({"TOKEN": m.MASK}, {"TOKEN": m.MASK})
    assert diff["code_sha256"] == ("old=", deployment.code.sha256)


def test_render_document_needs_no_role_or_config() -> None:
    document = sample_document()
    rendered = m.render_document(document, document.get("ServerlessRuntime"), SAMPLES, today=TODAY)
    assert rendered["CreateFunction"]["Role"].startswith("${")


# ----------------------------------------------------------------------------------- records


def test_metrics_sum_counts_weight_the_average_and_convert_to_seconds() -> None:
    t1, t2 = "2026-01-01T00:00Z", "2026-01-02T00:00Z"
    metrics = combine_metrics({
        "invocations": ([t1, t2], [1.0, 3.0]),
        "errors": ([t2], [2.0]),
        "average": ([t1, t2], [400.0, 200.0]),
        "maximum": ([t1, t2], [500.0, 900.0]),
        "p95": ([], []),
    })
    assert (metrics.invocations, metrics.errors) == (4, 2)
    assert metrics.duration.average_seconds == pytest.approx(0.25)  # (400*1 + 200*3) / 4 ms
    assert metrics.duration.maximum_seconds == pytest.approx(0.9)
    assert metrics.duration.p95_seconds is None


def test_no_cloudwatch_data_means_none_not_zero() -> None:
    empty = ([], [])
    metrics = combine_metrics({"invocations": empty, "errors": empty, "average": empty, "maximum": empty, "p95": empty})
    assert (metrics.invocations, metrics.errors, metrics.duration) == (None, None, None)


@pytest.mark.parametrize("text, expected", [
    ("2024-05-01T10:00:00.000+0000", 1714557600.0),
    ("2024-05-01T12:00:00.500+0200", 1714557600.5),
    ("2024-05-01T10:00:00.123456000Z", 1714557600.123456),
    (None, None),
])
def test_last_modified_parsing(text: str | None, expected: float | None) -> None:
    assert parse_last_modified(text) == (pytest.approx(expected) if expected else None)
