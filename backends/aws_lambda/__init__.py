"""ServerlessRuntime specs on AWS Lambda, with EventBridge (cron) and API Gateway HTTP API (http)
triggers. boto3 is imported only when a location is first used.

Entry point: `make_lambda_backends(aws_settings, read_only=False)` -> (backends, {"function": handler}).
The modules of the backend are imported on first use, so the configuration reads AwsSettings
(settings.py) without loading them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends.aws_lambda.settings import AwsSettings
from backends.lazy import on_first_use

if TYPE_CHECKING:
    from backends.aws_lambda.backend import LambdaBackend
    from backends.aws_lambda.client import AwsLocation
    from backends.aws_lambda.handler import FunctionNotFound, InvocationResult, LambdaHandler, ReadOnlyRefused
    from backends.aws_lambda.mapping import LambdaSpecError, render_document
    from backends.base import Backend
    from backends.handlers import RuntimeHandler

_ON_FIRST_USE = {
    "AwsLocation": "client", "FunctionNotFound": "handler", "InvocationResult": "handler", "LambdaBackend": "backend",
    "LambdaHandler": "handler", "LambdaSpecError": "mapping", "ReadOnlyRefused": "handler", "render_document": "mapping",
}

__all__ = [
    "AwsLocation", "AwsSettings", "FunctionNotFound", "InvocationResult", "LambdaBackend", "LambdaHandler", "LambdaSpecError",
    "ReadOnlyRefused", "make_lambda_backends", "render_document",
]
__getattr__ = on_first_use(__name__, _ON_FIRST_USE)


def make_lambda_backends(aws_settings: AwsSettings, read_only: bool = False) -> tuple[list[Backend], dict[str, RuntimeHandler]]:
    """One backend per configured location (profile x region) and the `function` handler,
    which deploys to the first location and lists all of them."""
    from backends.aws_lambda.backend import LambdaBackend
    from backends.aws_lambda.client import locations
    from backends.aws_lambda.handler import LambdaHandler

    unique = list(dict.fromkeys(locations(aws_settings)))
    backends = [LambdaBackend(location, read_only=read_only) for location in unique]
    handler = LambdaHandler(backends, default_role_arn=aws_settings.role_arn, read_only=read_only)
    return list(backends), {"function": handler}
