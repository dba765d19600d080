"""AWS Signature Version 4 on the local gateway's Lambda API, as Lambda itself requires it.

The hosting runtime creates one access key pair in the data folder the first time it starts,
`DATA/functions/credentials` (mode 0600), written as an AWS shared credentials file with the
profile `rtm-local`, so boto3 reads it with `AWS_SHARED_CREDENTIALS_FILE` and `profile_name`.
Every request to the Lambda API paths (`/2015-03-31/...` and the API's other dated prefixes)
must be signed with it for the service `lambda` (any region); http-trigger routes stay open, as
API Gateway's are. Failures are answered as Lambda answers them: 403 with `{"message": ...}` and
the error's name in `x-amzn-ErrorType`.

Signatures are computed with botocore's own signer (SigV4Auth), limited to the headers the
client says it signed, so the check matches what every AWS SDK sends. A request dated more
than five minutes away from this machine's clock is refused, as AWS does.
"""

from __future__ import annotations

import configparser
import functools
import hashlib
import hmac
import os
import re
import secrets
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from backends.files import ensure_private_dir

CREDENTIALS_NAME = "credentials"
PROFILE = "rtm-local"
SERVICE = "lambda"
MAX_CLOCK_SKEW = timedelta(minutes=5)
# Lambda's API paths all start with a dated version segment (/2015-03-31/functions/...).
LAMBDA_API_PATH = re.compile(r"^/\d{4}-\d{2}-\d{2}(/|$)")

_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_KEY_ALPHABET = string.ascii_uppercase + "234567"
_AUTHORIZATION = re.compile(r"^AWS4-HMAC-SHA256\s+(.*)$", re.S)
_INVALID_SIGNATURE = ("The request signature we calculated does not match the signature you provided. "
                      "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")


@dataclass(frozen=True)
class KeyPair:
    access_key_id: str
    secret_access_key: str


class AuthFailure(Exception):
    """The request is not signed, or not signed right: answered 403 with Lambda's error."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def credentials_path(store_root: Path | str) -> Path:
    return Path(store_root) / CREDENTIALS_NAME


def ensure_key_pair(store_root: Path | str) -> KeyPair:
    """The runtime's key pair, created (0600, never replaced) when the file does not exist."""
    path = credentials_path(store_root)
    ensure_private_dir(path.parent)
    pair = KeyPair("AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16)), secrets.token_urlsafe(30))
    text = (f"# The key pair the local functions runtime's Lambda API accepts (Signature Version 4,\n"
            f"# service lambda, any region). Kept across restarts; delete it to get a new one.\n"
            f"[{PROFILE}]\naws_access_key_id = {pair.access_key_id}\naws_secret_access_key = {pair.secret_access_key}\n")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)  # a copy restored with looser permissions is tightened
    else:
        with os.fdopen(fd, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
    found = read_key_pair(store_root)
    if found is None:
        raise ValueError(f"{path} holds no [{PROFILE}] key pair: delete it and start the runtime again")
    return found


def read_key_pair(store_root: Path | str) -> KeyPair | None:
    """The key pair in the data folder, or None when there is none (yet)."""
    parser = configparser.ConfigParser()
    try:
        parser.read_string(credentials_path(store_root).read_text())
    except (FileNotFoundError, configparser.Error):
        return None
    if not parser.has_section(PROFILE):
        return None
    section = parser[PROFILE]
    key_id, secret = section.get("aws_access_key_id"), section.get("aws_secret_access_key")
    return KeyPair(key_id, secret) if key_id and secret else None


# ------------------------------------------------------------------------------ signing


def sign(method: str, url: str, headers: dict[str, str], body: bytes, key: KeyPair,
         region: str = "us-east-1") -> dict[str, str]:
    """The headers of a request signed as boto3 signs it (for `rtm-console invoke`)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=url, headers=headers, data=body)
    SigV4Auth(Credentials(key.access_key_id, key.secret_access_key), SERVICE, region).add_auth(request)
    return dict(request.headers.items())


def verify(method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes, key: KeyPair,
           now: Callable[[], datetime]) -> None:
    """Raise AuthFailure unless the request carries a valid signature by `key`.

    `target` is the request line's path and query as sent; `headers` every header received.
    """
    received: dict[str, list[str]] = {}
    for name, value in headers:
        received.setdefault(name.lower(), []).append(value)
    authorization = (received.get("authorization") or [""])[0].strip()
    if not authorization:
        raise AuthFailure("MissingAuthenticationTokenException", "Missing Authentication Token")
    parts = _authorization_parts(authorization)
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise AuthFailure("IncompleteSignatureException",
                          f"Credential should be scoped to a valid region, not '{parts['Credential']}'.")
    key_id, day, region, service, _ = scope
    if not hmac.compare_digest(key_id, key.access_key_id):
        raise AuthFailure("UnrecognizedClientException", "The security token included in the request is invalid.")
    if service != SERVICE:
        raise AuthFailure("InvalidSignatureException", f"Credential should be scoped to correct service: '{SERVICE}'.")
    signed = parts["SignedHeaders"].lower().split(";")
    if "host" not in signed:
        raise AuthFailure("InvalidSignatureException", "'Host' must be a 'SignedHeader' in the AWS Authorization.")
    stamp = _request_time(received, day, now())
    missing = [name for name in signed if name not in received]
    if missing:
        raise AuthFailure("InvalidSignatureException", f"the signed header {missing[0]!r} is not in the request.")
    content_hash = received.get("x-amz-content-sha256")
    if content_hash and content_hash[0] != hashlib.sha256(body).hexdigest():
        raise AuthFailure("InvalidSignatureException", "The provided 'x-amz-content-sha256' header does not match what was computed.")
    expected = _signature(method, target, {n: received[n] for n in signed}, body, key, region, stamp)
    if not hmac.compare_digest(expected, parts["Signature"]):
        raise AuthFailure("InvalidSignatureException", _INVALID_SIGNATURE)


def _authorization_parts(authorization: str) -> dict[str, str]:
    found = _AUTHORIZATION.match(authorization)
    if not found:
        raise AuthFailure("IncompleteSignatureException",
                          f"Authorization header requires the AWS4-HMAC-SHA256 algorithm: {authorization.split(' ')[0]!r}.")
    parts = dict(item.strip().partition("=")[::2] for item in found.group(1).split(","))
    for needed in ("Credential", "SignedHeaders", "Signature"):
        if not parts.get(needed):
            raise AuthFailure("IncompleteSignatureException",
                              f"Authorization header requires '{needed}' parameter. Authorization={authorization}")
    return parts


def _request_time(received: dict[str, list[str]], day: str, now: datetime) -> str:
    stamp = (received.get("x-amz-date") or [""])[0]
    try:
        moment = datetime.strptime(stamp, _AMZ_DATE).replace(tzinfo=timezone.utc)
    except ValueError:
        raise AuthFailure("IncompleteSignatureException",
                          "Authorization header requires existence of a valid 'X-Amz-Date' header.") from None
    if stamp[:8] != day:
        raise AuthFailure("InvalidSignatureException", "Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                                                       f"version of date from HTTP: '{day}' != '{stamp[:8]}', from '{stamp}'.")
    shown_now = now.astimezone(timezone.utc).strftime(_AMZ_DATE)
    if moment < now - MAX_CLOCK_SKEW:
        earliest = (now - MAX_CLOCK_SKEW).strftime(_AMZ_DATE)
        raise AuthFailure("InvalidSignatureException", f"Signature expired: {stamp} is now earlier than {earliest} ({shown_now} - 5 min.)")
    if moment > now + MAX_CLOCK_SKEW:
        latest = (now + MAX_CLOCK_SKEW).strftime(_AMZ_DATE)
        raise AuthFailure("InvalidSignatureException", f"Signature not yet current: {stamp} is still later than {latest} ({shown_now} + 5 min.)")
    return stamp


def _signature(method: str, target: str, signed: dict[str, list[str]], body: bytes, key: KeyPair,
               region: str, stamp: str) -> str:
    """What botocore's signer computes for this request with exactly the signed headers."""
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method.upper(), url=f"http://{signed['host'][0]}{target}", data=body)
    for name, values in signed.items():
        for value in values:
            request.headers[name] = value
    request.context["timestamp"] = stamp
    signer = _signer_class()(Credentials(key.access_key_id, key.secret_access_key), SERVICE, region)
    canonical = signer.canonical_request(request)
    return signer.signature(signer.string_to_sign(request, canonical), request)


@functools.cache
def _signer_class() -> type:
    """botocore's SigV4Auth over the headers the request holds, all of which the client signed
    (the stock signer picks its own set, which another SDK may not have signed)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import HTTPHeaders

    class ClientSignedHeaders(SigV4Auth):
        def headers_to_sign(self, request):  # type: ignore[no-untyped-def]
            chosen = HTTPHeaders()
            for name, value in request.headers.items():
                chosen[name.lower()] = value
            return chosen

    return ClientSignedHeaders
