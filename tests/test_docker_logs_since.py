"""The Docker backend's logs from a point in time (`since`), on the test setup's engine: the
point is taken from the container's own log timestamps, so the test never waits for the clock."""

from __future__ import annotations

import pytest

from console.tui.widgets.log_view import parse_line
from test_docker_apply import setup  # noqa: F401 - the module's Docker handlers, a fixture
from test_docker_support import eventually

pytestmark = pytest.mark.docker

EARLY_THEN_LATE = "echo early-1; echo early-2; sleep 1; echo late-1; echo late-2; exec sleep 600"


@pytest.fixture
def early_then_late(docker_client, test_image, test_labels, run_id):
    """A container that prints two lines, then, a second later by its log's clock, two more."""
    container = docker_client.containers.run(test_image, ["sh", "-c", EARLY_THEN_LATE], name=f"{run_id}-since",
                                             labels=test_labels, detach=True, init=True)
    yield container
    container.remove(force=True)


def first_late_time(container) -> float:
    """The engine's timestamp of the container's `late-1` line (epoch seconds), once `late-2` is out."""
    def lines():
        found = [parse_line(raw) for raw in container.logs(timestamps=True).decode().splitlines()]
        return found if any(line.text == "late-2" for line in found) else []

    return next(line.time for line in eventually(lines, 30) if line.text == "late-1")


def test_logs_since_a_time_leave_out_the_lines_written_before_it(setup, early_then_late) -> None:
    late = first_late_time(early_then_late)
    assert list(setup.actions.logs(early_then_late.name, tail=None, since=late - 0.5)) == ["late-1", "late-2"]
    assert list(setup.actions.logs(early_then_late.name, tail=None, since=late - 60)) == ["early-1", "early-2", "late-1", "late-2"]
