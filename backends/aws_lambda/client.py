"""boto3 clients for one AWS location (profile + region), and AWS failures as typed errors.

Credentials and endpoints come from boto3's standard chain: the named profile (or the default
chain: environment variables, ~/.aws, SSO, instance roles), the region, and an endpoint URL
(`aws.endpoint_url` in the config, which defaults to AWS_ENDPOINT_URL) for moto or LocalStack.
Nothing here prints or logs credentials, request parameters or responses: the debug log gets
only the operation and the region.

Failures are sorted in two:
- the location cannot be used at all (endpoint unreachable, no or bad credentials, unknown
  profile) -> `BackendUnavailable`, whose availability names the region, the cause and what
  to try;
- AWS answered with an error about this request -> `AwsCallError` (operation, code, message).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from backends.aws_lambda.settings import AwsSettings
from backends.base import Availability, BackendUnavailable, one_line

log = logging.getLogger("rtm.backends.lambda")

BACKEND = "lambda"
DEFAULT_REGION = "us-east-1"
CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 30.0
MAX_ATTEMPTS = 2  # one retry: an unreachable endpoint is reported within seconds

# Error codes AWS answers with when the credentials (not the request) are the problem.
_CREDENTIAL_CODES = frozenset({
    "UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException",
    "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException", "RequestExpired",
    "InvalidAccessKeyId", "MissingAuthenticationToken",
})
_NOT_FOUND_CODES = frozenset({"ResourceNotFoundException", "NotFoundException"})


@dataclass(frozen=True)
class AwsLocation:
    """Where functions live: a region, seen through a profile (None: the default chain)."""

    region: str
    profile: str | None = None
    endpoint_url: str | None = None

    @property
    def label(self) -> str:
        """"us-east-1", or "prod/us-east-1" with a profile: unique per configured location."""
        return f"{self.profile}/{self.region}" if self.profile else self.region

    @property
    def endpoint(self) -> str:
        return self.endpoint_url or f"https://lambda.{self.region}.amazonaws.com"

    def where(self) -> str:
        """For availability reports: "https://... (region us-east-1, profile prod)"."""
        profile = f", profile {self.profile}" if self.profile else ""
        return f"{self.endpoint} (region {self.region}{profile})"


def locations(settings: AwsSettings) -> list[AwsLocation]:
    """Every configured profile in every configured region; without regions, each profile's
    own region, else us-east-1."""
    found = []
    for profile in settings.profiles or (None,):
        regions = settings.regions or (_profile_region(profile) or DEFAULT_REGION,)
        for region in regions:
            found.append(AwsLocation(region, profile, settings.endpoint_url))
    return found


def _profile_region(profile: str | None) -> str | None:
    import boto3
    import botocore.exceptions

    try:
        return boto3.session.Session(profile_name=profile).region_name
    except botocore.exceptions.ProfileNotFound:
        return None  # reported when the location is first used


class AwsCallError(ValueError):
    """AWS refused one request (not the connection or the credentials): a ValueError, so the
    commands report it in one line like other refused requests."""

    def __init__(self, location: AwsLocation, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation} in {location.region}: {code}: {one_line(message)}")
        self.location = location
        self.operation = operation
        self.code = code
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.code in _NOT_FOUND_CODES


class AwsClients:
    """Lazily created, shared boto3 clients for one location (boto3 clients are thread-safe;
    sessions are not, so creation is locked)."""

    def __init__(self, location: AwsLocation) -> None:
        self.location = location
        self._lock = threading.Lock()
        self._session: Any = None
        self._clients: dict[str, Any] = {}
        self._availability = Availability(BACKEND, location.where(), "pending")

    @property
    def session(self) -> Any:
        """The boto3 session (its `events` let tests watch calls before any client exists)."""
        with self._lock:
            if self._session is None:
                with translate_errors(self.location, "open the session"):
                    import boto3

                    self._session = boto3.session.Session(profile_name=self.location.profile, region_name=self.location.region)
            return self._session

    def client(self, service: str) -> Any:
        session = self.session
        with self._lock:
            if service not in self._clients:
                from botocore.config import Config

                config = Config(
                    connect_timeout=CONNECT_TIMEOUT_SECONDS,
                    read_timeout=READ_TIMEOUT_SECONDS,
                    retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
                )
                with translate_errors(self.location, f"create the {service} client"):
                    self._clients[service] = session.client(service, endpoint_url=self.location.endpoint_url, config=config)
            return self._clients[service]

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        """One AWS operation; `BackendUnavailable` or `AwsCallError` on failure."""
        log.debug("%s.%s in %s", service, operation, self.location.label)
        try:
            with translate_errors(self.location, f"{service}.{operation}"):
                response = getattr(self.client(service), operation)(**params)
        except BackendUnavailable as exc:
            self._availability = exc.availability
            raise
        self._availability = Availability(BACKEND, self.location.where(), "connected")
        response.pop("ResponseMetadata", None)
        return response

    def pages(self, service: str, operation: str, key: str, **params: Any) -> Iterator[Any]:
        """Every item under `key` across all pages of a listing operation."""
        with translate_errors(self.location, f"{service}.{operation}"):
            paginator = self.client(service).get_paginator(operation)
            pages = iter(paginator.paginate(**params))
        while True:
            try:
                with translate_errors(self.location, f"{service}.{operation}"):
                    page = next(pages, None)
            except BackendUnavailable as exc:
                self._availability = exc.availability
                raise
            if page is None:
                break
            self._availability = Availability(BACKEND, self.location.where(), "connected")
            yield from page.get(key, [])

    def availability(self) -> Availability:
        return self._availability

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


@contextmanager
def translate_errors(location: AwsLocation, operation: str) -> Iterator[None]:
    """botocore's exceptions -> BackendUnavailable / AwsCallError."""
    import botocore.exceptions as bce

    try:
        yield
    except (bce.EndpointConnectionError, bce.ConnectTimeoutError, bce.ReadTimeoutError,
            bce.ConnectionClosedError, bce.ProxyConnectionError, bce.SSLError) as exc:
        raise BackendUnavailable(unreachable(location, f"{operation}: {exc}")) from None
    except (bce.NoCredentialsError, bce.PartialCredentialsError) as exc:
        raise BackendUnavailable(no_credentials(location, str(exc))) from None
    except bce.ProfileNotFound:
        raise BackendUnavailable(Availability(
            BACKEND, location.where(), "unreachable", cause=f"the profile {location.profile!r} is not in the AWS config files",
            hint="add it to ~/.aws/config (aws configure --profile NAME) or fix aws.profiles")) from None
    except bce.TokenRetrievalError as exc:  # SSO session expired
        raise BackendUnavailable(no_credentials(location, str(exc))) from None
    except bce.ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", "")) or str(exc)
        if code in _CREDENTIAL_CODES:
            raise BackendUnavailable(Availability(
                BACKEND, location.where(), "unreachable", cause=f"the credentials were refused ({code}: {one_line(message, 160)})",
                hint=_credentials_hint(location))) from None
        raise AwsCallError(location, operation, code or "Error", message) from None
    except bce.ParamValidationError as exc:
        raise AwsCallError(location, operation, "ParamValidationError", str(exc)) from None
    except bce.BotoCoreError as exc:  # anything else from the transport: the location is unusable
        raise BackendUnavailable(unreachable(location, f"{operation}: {exc}")) from None


def unreachable(location: AwsLocation, cause: str) -> Availability:
    if location.endpoint_url:
        hint = (f"check that the AWS endpoint {location.endpoint_url} is running (for the test setup: "
                "make services-up), or fix aws.endpoint_url / AWS_ENDPOINT_URL")
    else:
        hint = (f"check the network, proxy settings (HTTPS_PROXY) and that {location.region} is a region "
                "your account uses; or set aws.regions")
    return Availability(BACKEND, location.where(), "unreachable", cause=one_line(cause, 240), hint=hint)


def no_credentials(location: AwsLocation, cause: str) -> Availability:
    return Availability(BACKEND, location.where(), "unreachable", cause=one_line(cause, 200), hint=_credentials_hint(location))


def _credentials_hint(location: AwsLocation) -> str:
    if location.profile:
        return f"refresh the profile's credentials (aws sso login --profile {location.profile}, or aws configure --profile {location.profile})"
    return ("configure credentials: aws configure (or aws sso login), set AWS_PROFILE / aws.profiles, "
            "or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
