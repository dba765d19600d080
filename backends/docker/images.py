"""Images: present on the engine, or pulled with progress, or a clear reason why not."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from backends.base import one_line
from backends.docker.client import EngineClient
from backends.docker.errors import DockerRequestError, ImagePullError

Progress = Callable[[str], None]

# How the engine words a registry it could not reach (Go's net and http errors).
_UNREACHABLE = (
    "dial tcp", "connection refused", "no such host", "i/o timeout", "network is unreachable",
    "tls handshake", "client.timeout", "server misbehaving", "no route to host", "connection reset",
    "server gave http response to https client",
)  # fmt: skip
_UNKNOWN_IMAGE = ("manifest unknown", "not found", "repository does not exist", "pull access denied", "name unknown")
PROGRESS_EVERY = 0.5  # seconds between two progress lines while bytes arrive


def registry_of(image: str) -> str:
    """The registry an image reference points at (Docker's rule: a first component with a dot,
    a colon or `localhost` is a registry; otherwise Docker Hub)."""
    first, sep, _rest = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def pull_failure(image: str, message: str) -> ImagePullError:
    registry = registry_of(image)
    lowered = message.lower()
    detail = one_line(message, 200)
    if any(word in lowered for word in _UNREACHABLE):
        return ImagePullError(
            f"cannot pull {image}: registry {registry} is unreachable ({detail})",
            "load the image into the engine (docker load / docker import), or use a registry the engine can reach",
        )
    if any(word in lowered for word in _UNKNOWN_IMAGE):
        return ImagePullError(f"cannot pull {image}: {registry} has no such image ({detail})", "check the image name and tag")
    return ImagePullError(f"cannot pull {image} from {registry}: {detail}")


def image_present(client: EngineClient, image: str) -> bool:
    try:
        client.call(lambda api: api.inspect_image(image))
    except DockerRequestError as error:
        if "no such image" in str(error).lower() or "not found" in str(error).lower():
            return False
        raise
    return True


class PullProgress:
    """Turns the engine's per-layer pull messages into a few lines for people."""

    def __init__(self, image: str, report: Progress, clock: Callable[[], float] = time.monotonic) -> None:
        self.image = image
        self.report = report
        self.clock = clock
        self.layers: dict[str, tuple[int, int]] = {}  # id -> (bytes done, bytes total)
        self.finished: set[str] = set()
        self._last_report = float("-inf")

    def take(self, message: Mapping[str, Any]) -> None:
        if message.get("error"):
            raise pull_failure(self.image, str(message.get("error")))
        layer, status = str(message.get("id") or ""), str(message.get("status") or "")
        detail = message.get("progressDetail") or {}
        if layer and detail.get("total"):
            self.layers[layer] = (int(detail.get("current") or 0), int(detail["total"]))
        if layer and status in ("Download complete", "Pull complete", "Already exists"):
            self.finished.add(layer)
            if layer in self.layers:  # complete: the last progress message may have come earlier
                self.layers[layer] = (self.layers[layer][1], self.layers[layer][1])
        now = self.clock()
        if status.startswith("Pulling from") or status == "Pull complete" or now - self._last_report >= PROGRESS_EVERY:
            self._last_report = now
            self.report(self.line())

    def line(self) -> str:
        done = sum(current for current, _ in self.layers.values())
        total = sum(total for _, total in self.layers.values())
        if not total:
            return f"pulling {self.image} from {registry_of(self.image)}"
        percent = 100 * done // total
        return f"pulling {self.image}: {percent}% ({done / 1e6:.1f} of {total / 1e6:.1f} MB, {len(self.finished)} layers done)"


def pull(client: EngineClient, image: str, progress: Progress) -> None:
    """Pulls `image`, reporting progress; ImagePullError says why it failed."""
    tracker = PullProgress(image, progress)
    progress(f"{image} is not on {client.endpoint.backend_name}: pulling from {registry_of(image)}")
    def run(api: Any) -> None:
        for message in api.pull(image, stream=True, decode=True):
            tracker.take(message)

    try:
        client.call(run)
    except ImagePullError:
        raise
    except DockerRequestError as error:
        raise pull_failure(image, error.message) from None
    if not image_present(client, image):
        raise ImagePullError(f"pulling {image} finished without the image on the engine")
    progress(f"pulled {image}")


def ensure_image(client: EngineClient, image: str, progress: Progress) -> bool:
    """True when the image had to be pulled."""
    if image_present(client, image):
        return False
    pull(client, image, progress)
    return True
