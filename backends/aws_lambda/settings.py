"""What the configuration gives the AWS Lambda backend. console/config builds it;
`make_lambda_backends(settings)` takes it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AwsSettings:
    regions: tuple[str, ...]  # empty: each profile's own region, else us-east-1
    profiles: tuple[str, ...]  # empty: boto3's default credential chain
    endpoint_url: str | None  # moto or LocalStack instead of AWS
    role_arn: str | None  # execution role for functions whose spec names none
