"""A ServerlessRuntime spec as the AWS calls that deploy it: pure, contacts nothing.

`build_deployment` checks the spec against Lambda's limits first (moto checks none of them, and
real AWS would refuse only halfway through a deployment), then packages the code. The result,
a `FunctionDeployment`, is what `render` prints and what the handler sends:

- CreateFunction / UpdateFunctionConfiguration: runtime, handler, memory (MB), timeout
  (whole seconds), environment, VPC (subnets + security groups), execution role;
- the code as a zip built deterministically (sorted entries, fixed timestamps and modes), so
  the same files always give the same CodeSha256 and re-applying unchanged code is a no-op;
  a .zip named by the spec is uploaded as it is;
- per cron trigger: an EventBridge rule (`put_rule` with the 6-field or rate expression from
  rtm.cron.to_eventbridge), its target (`put_targets`) and the permission letting
  events.amazonaws.com invoke the function from that rule;
- per http trigger: a route `METHOD /path` on the function's own HTTP API (one API per
  function, see docs/functions-aws.md), a Lambda proxy integration with payload format 2.0,
  the auto-deployed `$default` stage and the permission for apigateway.amazonaws.com with the
  route's execute-api source ARN.

Names are deterministic (rule names and permission statement ids are derived from the
function and the trigger), so the handler finds what an earlier apply created instead of
creating it twice.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends.code_folder import CodeError, folder_files
from rtm.cron import to_eventbridge
from rtm.errors import SpecValueError
from rtm.kinds.serverless import ENVIRONMENT_LIMIT_BYTES, LAMBDA_RUNTIMES, MIB, ServerlessRuntime, environment_size
from rtm.secrets import MASK, mask_secrets  # noqa: F401 - MASK is what masked values read as

if TYPE_CHECKING:
    from rtm.documents import Document

# Lambda's limits (CreateFunction).
MIN_MEMORY_MB, MAX_MEMORY_MB = 128, 10_240
MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS = 1, 900
MAX_ZIP_UPLOAD_BYTES = 50 * MIB  # a larger package has to go through S3
MAX_UNZIPPED_BYTES = 250 * MIB
FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
PYTHON_HANDLER = re.compile(r"[A-Za-z_][\w.]*\.[A-Za-z_]\w*")
ENVIRONMENT_KEY = re.compile(r"[a-zA-Z][a-zA-Z0-9_]+")
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
# Set by the Lambda runtime itself; CreateFunction refuses them.
RESERVED_ENVIRONMENT_KEYS = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
})

# What rtm-console tags and names its resources with, to find them again.
MANAGED_TAG, MANAGED_VALUE = "rtm:managed-by", "rtm-console"
FUNCTION_TAG = "rtm:function"
RULE_PREFIX = "rtm-"
API_PREFIX = "rtm-"
STATEMENT_PREFIX = "rtm-"
TARGET_ID = "rtm-function"
DEFAULT_STAGE = "$default"
PAYLOAD_FORMAT = "2.0"

# Placeholders in rendered calls for what only AWS knows before the call is made.
REGION, ACCOUNT, API_ID, INTEGRATION_ID = "${region}", "${account}", "${api_id}", "${integration_id}"

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold


# ------------------------------------------------------------------------------------ errors


@dataclass(frozen=True)
class Problem:
    field: str  # "timeout", "environment", "triggers[1].schedule", ...
    message: str
    hint: str = ""

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" + (f" (hint: {self.hint})" if self.hint else "")


class LambdaSpecError(ValueError):
    """The spec cannot be deployed to Lambda as it is; nothing was sent to AWS."""

    def __init__(self, function: str, problems: Iterable[Problem]) -> None:
        self.function = function
        self.problems = tuple(problems)
        listed = "; ".join(str(p) for p in self.problems)
        super().__init__(f"function {function} cannot be deployed to Lambda: {listed}")


# ------------------------------------------------------------------------------------ values


@dataclass(frozen=True)
class CodePackage:
    source: str  # as the spec wrote it
    zip_bytes: bytes
    sha256: str  # base64, as Lambda reports CodeSha256

    @property
    def size_bytes(self) -> int:
        return len(self.zip_bytes)

    def __repr__(self) -> str:  # never dump the bytes
        return f"CodePackage({self.source!r}, {self.size_bytes} bytes, sha256={self.sha256})"

    def describe(self) -> str:
        return f"<zip of {self.source}: {self.size_bytes} bytes, CodeSha256 {self.sha256}>"


@dataclass(frozen=True)
class CronTrigger:
    schedule: str  # as the spec wrote it
    expression: str  # EventBridge form: cron(...) or rate(...)
    rule_name: str
    statement_id: str

    def describe(self) -> str:
        return f"cron {self.expression}"


@dataclass(frozen=True)
class HttpTrigger:
    method: str  # upper case, or ANY
    path: str
    statement_id: str

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def describe(self) -> str:
        return f"http {self.route_key}"


@dataclass(frozen=True)
class FunctionDeployment:
    name: str
    runtime: str
    handler: str
    memory_mb: int
    timeout_seconds: int
    environment: tuple[tuple[str, str], ...]  # sorted
    subnet_ids: tuple[str, ...]  # sorted
    security_group_ids: tuple[str, ...]  # sorted
    role_arn: str | None  # None only when rendering without a role configured
    code: CodePackage
    cron: tuple[CronTrigger, ...]
    http: tuple[HttpTrigger, ...]

    @property
    def trigger_descriptions(self) -> tuple[str, ...]:
        return tuple(t.describe() for t in (*self.http, *self.cron))

    def configuration(self) -> dict[str, Any]:
        """The parameters UpdateFunctionConfiguration takes (CreateFunction takes them too)."""
        return {
            "FunctionName": self.name,
            "Role": self.role_arn,
            "Runtime": self.runtime,
            "Handler": self.handler,
            "Timeout": self.timeout_seconds,
            "MemorySize": self.memory_mb,
            "Environment": {"Variables": dict(self.environment)},
            "VpcConfig": {"SubnetIds": list(self.subnet_ids), "SecurityGroupIds": list(self.security_group_ids)},
        }

    def create_request(self) -> dict[str, Any]:
        """The CreateFunction parameters, code included."""
        return {
            **self.configuration(),
            "PackageType": "Zip",
            "Code": {"ZipFile": self.code.zip_bytes},
            "Tags": {MANAGED_TAG: MANAGED_VALUE},
            "Publish": False,
        }

    def settings(self) -> dict[str, Any]:
        """The fields a plan compares, in the same shape as `live_settings` gives them."""
        return {
            "runtime": self.runtime,
            "handler": self.handler,
            "memory_mb": self.memory_mb,
            "timeout_seconds": self.timeout_seconds,
            "environment": dict(self.environment),
            "vpc": {"subnets": list(self.subnet_ids), "security_groups": list(self.security_group_ids)},
            "role": self.role_arn,
            "code_sha256": self.code.sha256,
        }

    def differences(self, live_configuration: Mapping[str, Any]) -> tuple[tuple[str, Any, Any], ...]:
        """(field, live value, spec value) for each field that differs, secrets masked."""
        live, wanted = live_settings(live_configuration), self.settings()
        changed = []
        for field, value in wanted.items():
            if live.get(field) != value:
                old, new = live.get(field), value
                if field == "environment":
                    old, new = mask_environment(old or {}), mask_environment(new)
                changed.append((field, old, new))
        return tuple(changed)


def live_settings(configuration: Mapping[str, Any]) -> dict[str, Any]:
    """A function's configuration (GetFunctionConfiguration) in the shape of `settings()`."""
    vpc = configuration.get("VpcConfig") or {}
    return {
        "runtime": configuration.get("Runtime"),
        "handler": configuration.get("Handler"),
        "memory_mb": configuration.get("MemorySize"),
        "timeout_seconds": configuration.get("Timeout"),
        "environment": dict((configuration.get("Environment") or {}).get("Variables") or {}),
        "vpc": {"subnets": sorted(vpc.get("SubnetIds") or []), "security_groups": sorted(vpc.get("SecurityGroupIds") or [])},
        "role": configuration.get("Role"),
        "code_sha256": configuration.get("CodeSha256"),
    }


CODE_FIELDS = frozenset({"code_sha256"})


# ------------------------------------------------------------------------------------ naming


def _digest(*parts: str, length: int = 10) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:length]


def function_name(spec: ServerlessRuntime, document_name: str | None) -> str | None:
    return document_name or spec.name


def rule_name(function: str, expression: str) -> str:
    """`rtm-<function>-<hash>`: stable for the same function and schedule, at most 64 chars."""
    return f"{RULE_PREFIX}{function[:40]}-{_digest(function, expression)}"


def rule_prefix(function: str) -> str:
    return f"{RULE_PREFIX}{function[:40]}-"


def api_name(function: str) -> str:
    return f"{API_PREFIX}{function}"


def cron_statement_id(rule: str) -> str:
    return f"{STATEMENT_PREFIX}cron-{_digest(rule, length=16)}"


def http_statement_id(route_key: str) -> str:
    return f"{STATEMENT_PREFIX}http-{_digest(route_key, length=16)}"


def function_arn(region: str, account: str, name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:lambda:{region}:{account}:function:{name}"


def execute_api_arn(region: str, account: str, api_id: str, route: HttpTrigger, partition: str = "aws") -> str:
    """The source ARN that lets one route (any stage) invoke the function:
    `arn:aws:execute-api:REGION:ACCOUNT:API_ID/*/METHOD/path`, with ANY and path
    parameters (`{id}`, `{proxy+}`) as `*`."""
    method = "*" if route.method == "ANY" else route.method
    path = "/".join("*" if segment.startswith("{") else segment for segment in route.path.split("/"))
    return f"arn:{partition}:execute-api:{region}:{account}:{api_id}/*/{method}{path}"


def arn_parts(arn: str) -> tuple[str, str, str]:
    """(partition, region, account) of an ARN."""
    parts = arn.split(":")
    return parts[1], parts[3], parts[4]


# ----------------------------------------------------------------------------- trigger calls


def managed_tags(function: str) -> dict[str, str]:
    return {MANAGED_TAG: MANAGED_VALUE, FUNCTION_TAG: function}


def put_rule_params(function: str, trigger: CronTrigger) -> dict[str, Any]:
    return {
        "Name": trigger.rule_name,
        "ScheduleExpression": trigger.expression,
        "State": "ENABLED",
        "Description": f"runs function {function} on {trigger.schedule} (managed by rtm-console)",
        "Tags": [{"Key": k, "Value": v} for k, v in managed_tags(function).items()],
    }


def put_targets_params(trigger: CronTrigger, target_arn: str) -> dict[str, Any]:
    return {"Rule": trigger.rule_name, "Targets": [{"Id": TARGET_ID, "Arn": target_arn}]}


def cron_permission_params(function: str, trigger: CronTrigger, rule_arn: str) -> dict[str, Any]:
    return {
        "FunctionName": function,
        "StatementId": trigger.statement_id,
        "Action": "lambda:InvokeFunction",
        "Principal": "events.amazonaws.com",
        "SourceArn": rule_arn,
    }


def create_api_params(function: str) -> dict[str, Any]:
    return {
        "Name": api_name(function),
        "ProtocolType": "HTTP",
        "Description": f"http triggers of function {function} (managed by rtm-console)",
        "Tags": managed_tags(function),
    }


def create_integration_params(api_id: str, target_arn: str) -> dict[str, Any]:
    return {
        "ApiId": api_id,
        "IntegrationType": "AWS_PROXY",
        "IntegrationUri": target_arn,
        "PayloadFormatVersion": PAYLOAD_FORMAT,
    }


def create_route_params(api_id: str, route: HttpTrigger, integration_id: str) -> dict[str, Any]:
    return {"ApiId": api_id, "RouteKey": route.route_key, "Target": f"integrations/{integration_id}"}


def create_stage_params(api_id: str) -> dict[str, Any]:
    return {"ApiId": api_id, "StageName": DEFAULT_STAGE, "AutoDeploy": True}


def http_permission_params(function: str, route: HttpTrigger, source_arn: str) -> dict[str, Any]:
    return {
        "FunctionName": function,
        "StatementId": route.statement_id,
        "Action": "lambda:InvokeFunction",
        "Principal": "apigateway.amazonaws.com",
        "SourceArn": source_arn,
    }


def rule_arn(region: str, account: str, rule: str, partition: str = "aws") -> str:
    return f"arn:{partition}:events:{region}:{account}:rule/{rule}"


# ---------------------------------------------------------------------------------- checking


def check_limits(spec: ServerlessRuntime, name: str | None, role_arn: str | None, today: date, *, need_role: bool = True) -> list[Problem]:
    """Everything Lambda, EventBridge or API Gateway would refuse, found before any call."""
    problems: list[Problem] = []
    if not name:
        problems.append(Problem("name", "the function has no name", "give the document a name: or the spec a name field"))
    elif not FUNCTION_NAME.fullmatch(name):
        problems.append(Problem("name", f'"{name}" is not a Lambda function name', "at most 64 letters, digits, - and _"))
    problems += _runtime_problems(spec.runtime, today)
    if spec.runtime.startswith("python") and not PYTHON_HANDLER.fullmatch(spec.handler):
        problems.append(Problem("handler", f'"{spec.handler}" is not a Python handler', "write module.function, e.g. main.handler"))
    if spec.memory % MIB or not MIN_MEMORY_MB <= spec.memory // MIB <= MAX_MEMORY_MB:
        problems.append(Problem("memory", f"{spec.memory / MIB:g} MB is outside Lambda's {MIN_MEMORY_MB}-{MAX_MEMORY_MB} MB in whole MB",
                                "e.g. memory: 256Mi"))
    if spec.timeout != int(spec.timeout) or not MIN_TIMEOUT_SECONDS <= spec.timeout <= MAX_TIMEOUT_SECONDS:
        problems.append(Problem("timeout", f"{spec.timeout:g} s is outside Lambda's {MIN_TIMEOUT_SECONDS}-{MAX_TIMEOUT_SECONDS} s in whole seconds",
                                "longer work belongs in Step Functions, ECS or a queue of shorter invocations"))
    problems += _environment_problems(spec.environment)
    problems += _trigger_problems(spec)
    if spec.vpc is not None and bool(spec.vpc.subnets) != bool(spec.vpc.security_groups):
        problems.append(Problem("vpc", "a VPC configuration needs both subnets and security_groups"))
    if role_arn is None and need_role:
        problems.append(Problem("role_arn", "no execution role", "set role_arn in the spec, or aws.role_arn in the config"))
    elif role_arn is not None and not ROLE_ARN.fullmatch(role_arn):
        problems.append(Problem("role_arn", f'"{role_arn}" is not an IAM role ARN', "e.g. arn:aws:iam::123456789012:role/lambda-exec"))
    if not spec.code:
        problems.append(Problem("code", "the spec names no code", 'add code: "functions/NAME" (a folder or a .zip next to the spec)'))
    return problems


def _runtime_problems(runtime: str, today: date) -> list[Problem]:
    if runtime not in LAMBDA_RUNTIMES:
        return [Problem("runtime", f'"{runtime}" is not a Lambda runtime', "e.g. python3.13")]
    deprecated = LAMBDA_RUNTIMES[runtime]
    if deprecated is None or deprecated > today:
        return []
    family = re.match(r"[a-z]+", runtime).group()  # type: ignore[union-attr]
    supported = [r for r, d in LAMBDA_RUNTIMES.items() if r.startswith(family) and (d is None or d > today)]
    hint = f"use {supported[-1]}" if supported else "choose a supported runtime"
    return [Problem("runtime", f"{runtime} was deprecated by AWS on {deprecated.isoformat()}; Lambda refuses functions on it", hint)]


def _environment_problems(environment: Mapping[str, str]) -> list[Problem]:
    problems = []
    size = environment_size(environment)  # type: ignore[arg-type]
    if size > ENVIRONMENT_LIMIT_BYTES:
        problems.append(Problem("environment", f"the environment takes {size} bytes, over Lambda's {ENVIRONMENT_LIMIT_BYTES}-byte (4 KB) limit",
                                "move large values to a parameter store or into the code package"))
    for key in environment:
        if key in RESERVED_ENVIRONMENT_KEYS:
            problems.append(Problem(f"environment.{key}", "is set by Lambda itself and cannot be overridden", "use another name"))
        elif not ENVIRONMENT_KEY.fullmatch(key):
            problems.append(Problem(f"environment.{key}", "is not a valid variable name", "a letter, then letters, digits and _"))
    return problems


def _trigger_problems(spec: ServerlessRuntime) -> list[Problem]:
    problems = []
    for index, trigger in enumerate(spec.triggers):
        where = f"triggers[{index}]"
        if trigger.type == "cron":
            if trigger.schedule is None:
                problems.append(Problem(f"{where}.schedule", "a cron trigger needs a schedule"))
                continue
            try:
                to_eventbridge(trigger.schedule)
            except SpecValueError as exc:
                problems.append(Problem(f"{where}.schedule", f"EventBridge cannot run this schedule: {exc.message}", exc.hint or ""))
        elif not trigger.path or not trigger.path.startswith("/"):
            problems.append(Problem(f"{where}.path", "an http trigger needs a path starting with /"))
    return problems


# --------------------------------------------------------------------------------- building


def build_deployment(
    document: Document, base_dir: Path, *, default_role_arn: str | None, today: date, need_role: bool = True
) -> FunctionDeployment:
    """Check the document's ServerlessRuntime and turn it into a deployment.

    Raises LambdaSpecError listing every problem; nothing here contacts AWS.
    `need_role=False` is for rendering, where a missing role is shown as a placeholder."""
    spec: ServerlessRuntime = document.get("ServerlessRuntime")
    name = function_name(spec, document.name)
    role = spec.role_arn or default_role_arn
    problems = check_limits(spec, name, role, today, need_role=need_role)
    if problems:
        raise LambdaSpecError(name or "(unnamed)", problems)
    assert name is not None and spec.code is not None
    code = package_code(spec.code, Path(base_dir), name)
    cron, http = [], []
    for trigger in spec.triggers:
        if trigger.type == "cron":
            expression = to_eventbridge(trigger.schedule)  # type: ignore[arg-type]
            rule = rule_name(name, expression)
            cron.append(CronTrigger(trigger.schedule.text, expression, rule, cron_statement_id(rule)))  # type: ignore[union-attr]
        else:
            method = trigger.method.upper()
            http.append(HttpTrigger(method, trigger.path, http_statement_id(f"{method} {trigger.path}")))  # type: ignore[arg-type]
    _check_unique(name, cron, http)
    vpc = spec.vpc
    return FunctionDeployment(
        name=name,
        runtime=spec.runtime,
        handler=spec.handler,
        memory_mb=spec.memory // MIB,
        timeout_seconds=int(spec.timeout),
        environment=tuple(sorted(spec.environment.items())),
        subnet_ids=tuple(sorted(vpc.subnets)) if vpc else (),
        security_group_ids=tuple(sorted(vpc.security_groups)) if vpc else (),
        role_arn=role,
        code=code,
        cron=tuple(cron),
        http=tuple(http),
    )


def _check_unique(name: str, cron: list[CronTrigger], http: list[HttpTrigger]) -> None:
    """Two schedules written differently can be the same rule (`0 0 * * *` and `@daily`)."""
    problems = []
    for kind, keys in (("cron", [t.expression for t in cron]), ("http", [t.route_key for t in http])):
        for key in sorted({k for k in keys if keys.count(k) > 1}):
            problems.append(Problem("triggers", f"two {kind} triggers are both {key}", "keep one of them"))
    if problems:
        raise LambdaSpecError(name, problems)


# ------------------------------------------------------------------------------------- code


def package_code(source: str, base_dir: Path, function: str) -> CodePackage:
    """The code as the zip Lambda receives. A folder is zipped deterministically; a .zip is
    sent as it is."""
    path = base_dir / source
    if path.is_dir():
        data = zip_folder(path, function)
    elif path.is_file() and zipfile.is_zipfile(path):
        data = path.read_bytes()
    elif path.exists():
        raise LambdaSpecError(function, [Problem("code", f"{source} is neither a folder nor a zip file")])
    else:
        raise LambdaSpecError(function, [Problem("code", f"{source} does not exist (relative to the spec file's folder)")])
    if len(data) > MAX_ZIP_UPLOAD_BYTES:
        raise LambdaSpecError(function, [Problem("code", f"the zipped code takes {len(data) / MIB:.1f} MB, over the {MAX_ZIP_UPLOAD_BYTES // MIB} MB Lambda accepts directly",
                                                 "leave build outputs and dependencies that Lambda provides out of the folder")])
    return CodePackage(source, data, base64.b64encode(hashlib.sha256(data).digest()).decode())


def zip_folder(folder: Path, function: str) -> bytes:
    """A zip of the folder's files whose bytes depend only on the files' paths, contents and
    executable bits: entries sorted, timestamps fixed, modes 644/755, caches left out."""
    buffer = io.BytesIO()
    total = 0
    with zipfile.ZipFile(buffer, "w") as archive:
        try:
            files = sorted(folder_files(folder), key=lambda entry: entry[0])
        except CodeError as exc:  # a link that dangles, loops or leaves the folder
            raise LambdaSpecError(function, [Problem("code", str(exc))]) from None
        for relative, executable, read in files:
            data = read()
            total += len(data)
            if total > MAX_UNZIPPED_BYTES:
                raise LambdaSpecError(function, [Problem("code", f"{folder.name} holds more than Lambda's {MAX_UNZIPPED_BYTES // MIB} MB of unzipped code")])
            info = zipfile.ZipInfo(relative, date_time=_ZIP_EPOCH)
            info.create_system = 3  # unix, so the modes below are honoured
            info.external_attr = ((0o100755 if executable else 0o100644) & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=9)
    return buffer.getvalue()


# ----------------------------------------------------------------------------------- output


def mask_environment(environment: Mapping[str, str]) -> dict[str, str]:
    """The environment for people to read, masked by the rule every output shares (rtm.secrets)."""
    return mask_secrets(dict(environment))


def render(deployment: FunctionDeployment, region: str | None = None, account: str | None = None) -> dict[str, Any]:
    """The CreateFunction request and the trigger calls apply makes, as JSON-ready data.

    Values AWS assigns (account, API and integration ids) appear as ${placeholders}; the
    region too unless given. Secret-looking environment values are masked and the code is
    summarised, never dumped."""
    where = (region or REGION, account or ACCOUNT)
    target = function_arn(*where, deployment.name)
    request = deployment.create_request()
    request["Code"] = {"ZipFile": deployment.code.describe()}
    request["Environment"] = {"Variables": mask_environment(dict(deployment.environment))}
    if request["Role"] is None:
        request["Role"] = "${aws.role_arn from the config}"
    triggers: list[dict[str, Any]] = []
    for cron in deployment.cron:
        triggers.append({"trigger": f"cron {cron.schedule}", "calls": [
            {"call": "events.put_rule", "params": put_rule_params(deployment.name, cron)},
            {"call": "events.put_targets", "params": put_targets_params(cron, target)},
            {"call": "lambda.add_permission", "params": cron_permission_params(deployment.name, cron, rule_arn(*where, cron.rule_name))},
        ]})
    if deployment.http:
        calls: list[dict[str, Any]] = [
            {"call": "apigatewayv2.create_api", "params": create_api_params(deployment.name)},
            {"call": "apigatewayv2.create_integration", "params": create_integration_params(API_ID, target)},
        ]
        for route in deployment.http:
            calls.append({"call": "apigatewayv2.create_route", "params": create_route_params(API_ID, route, INTEGRATION_ID)})
        calls.append({"call": "apigatewayv2.create_stage", "params": create_stage_params(API_ID)})
        for route in deployment.http:
            calls.append({"call": "lambda.add_permission",
                          "params": http_permission_params(deployment.name, route, execute_api_arn(*where, API_ID, route))})
        triggers.append({"trigger": ", ".join(r.describe() for r in deployment.http), "calls": calls})
    return {"CreateFunction": request, "triggers": triggers}


def render_document(document: Document, spec: ServerlessRuntime, base_dir: Path, *, today: date | None = None) -> dict[str, Any]:
    """The renderer console/render.py registers for ServerlessRuntime (document, spec, base_dir):
    no config at hand, so the region, account and a missing role are placeholders."""
    deployment = build_deployment(document, Path(base_dir), default_role_arn=None, today=today or date.today(), need_role=False)
    return render(deployment)
