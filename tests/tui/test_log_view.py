"""The followed log: `/` search with next and previous, timestamps and wrap toggles, "since" (all,
5m, 1h), and a bound on the lines kept; against a container of the test setup's Docker engine,
and on lines fed to the view directly."""

from __future__ import annotations

import time

import pytest
from textual.app import App, ComposeResult
from textual.widgets import RichLog

from console.datadir import iso_utc
from console.tui.widgets.log_view import MAX_LINES, LogView
from tui.conftest import wait_for

SIZE = (140, 40)


class _OneLog(App[None]):
    def compose(self) -> ComposeResult:
        yield LogView(time.time)


def _texts(view: LogView) -> list[str]:
    return [strip.text.rstrip() for strip in view.query_one(RichLog).lines]


async def test_the_view_keeps_at_most_max_lines() -> None:
    app = _OneLog()
    async with app.run_test(size=(100, 20)) as pilot:
        view = app.query_one(LogView)
        for index in range(MAX_LINES + 250):
            view.add_line(f"{iso_utc(time.time())} line {index}")
        await pilot.pause()
        assert len(view.lines) == MAX_LINES and len(_texts(view)) <= MAX_LINES
        assert view.lines[0].text == "line 250" and _texts(view)[-1] == f"line {MAX_LINES + 249}"


async def test_since_shows_only_the_recent_lines_and_timestamps_can_be_shown() -> None:
    app = _OneLog()
    async with app.run_test(size=(100, 20)) as pilot:
        view = app.query_one(LogView)
        now = time.time()
        view.add_line(f"{iso_utc(now - 7200)} two hours ago")
        view.add_line(f"{iso_utc(now - 1800)} half an hour ago")
        view.add_line(f"{iso_utc(now - 10)} just now")
        view.query_one(RichLog).focus()
        await pilot.pause()
        assert _texts(view) == ["two hours ago", "half an hour ago", "just now"]
        await pilot.press("s")  # since 5m
        assert _texts(view) == ["just now"]
        await pilot.press("s")  # since 1h
        assert _texts(view) == ["half an hour ago", "just now"]
        await pilot.press("T")
        assert _texts(view)[-1] == f"{iso_utc(now - 10)} just now"
        status = str(view.query_one("#log-status").render())
        assert "since: 1h" in status and "timestamps: on" in status


async def test_search_next_previous_and_wrap_on_a_containers_log(live_console, docker_client, test_image,
                                                               test_labels, run_id) -> None:
    from tui.test_console_docker import _docker_console, open_logs

    script = "for i in 1 2 3 4 5 6; do echo line-$i; [ $((i % 2)) = 0 ] && echo needle-$i; done; " \
             "echo $(seq -s - 1 80); exec sleep 600"
    container = docker_client.containers.run(test_image, ["sh", "-c", script], name=f"{run_id}-logs",
                                             labels=test_labels, detach=True, init=True)
    try:
        console = _docker_console(live_console)
        app = console.app
        async with app.run_test(size=SIZE) as pilot:
            view = (await open_logs(pilot, app, container.name)).query_one(LogView)
            assert await wait_for(pilot, lambda: any(text.startswith("1-2-3") for text in _texts(view)), timeout=30)
            view.query_one(RichLog).focus()
            await pilot.press("slash", *"needle", "enter")
            status = view.query_one("#log-status")
            assert await wait_for(pilot, lambda: "/needle: match 1 of 3" in str(status.render()))
            first = view.query_one(RichLog).scroll_y
            await pilot.press("n")
            assert "match 2 of 3" in str(status.render())
            await pilot.press("N", "N")
            assert "match 3 of 3" in str(status.render())  # previous from the first goes round
            long_rows = len(_texts(view))
            await pilot.press("w")
            assert await wait_for(pilot, lambda: len(_texts(view)) > long_rows)  # the long line now takes two rows
            await pilot.press("T")
            assert await wait_for(pilot, lambda: _texts(view)[0].startswith(time.strftime("%Y-")))
            assert first >= 0
            await pilot.press("escape")
    finally:
        container.remove(force=True)


async def test_since_asks_the_engine_for_the_lines_of_the_window(live_console, docker_client, test_image,
                                                               test_labels, run_id) -> None:
    """5m shows what the engine has since five minutes before the view's clock, asked of the
    engine (one logs call with `since`), and "all" asks again without it."""
    from test_docker_logs_since import EARLY_THEN_LATE, first_late_time
    from tui.test_console_docker import _docker_console, open_logs

    container = docker_client.containers.run(test_image, ["sh", "-c", EARLY_THEN_LATE], name=f"{run_id}-since",
                                             labels=test_labels, detach=True, init=True)
    try:
        late = first_late_time(container)
        console = _docker_console(live_console)
        app = console.app
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_logs(pilot, app, container.name)
            view = screen.query_one(LogView)
            assert await wait_for(pilot, lambda: _texts(view) == ["early-1", "early-2", "late-1", "late-2"], timeout=30)
            actions = screen.handler.actions
            asked, real_logs = [], actions.logs
            actions.logs = lambda name, **options: (asked.append(options.get("since")), real_logs(name, **options))[1]
            view.clock = lambda: late + 300 - 0.5  # five minutes from here start half a second before late-1
            view.query_one(RichLog).focus()
            await pilot.press("s")  # since 5m
            assert await wait_for(pilot, lambda: _texts(view) == ["late-1", "late-2"], timeout=30)
            assert list(view.lines) and all(line.text.startswith("late") for line in view.lines)  # nothing else kept
            await pilot.press("s")  # since 1h: the early lines come back from the engine
            assert await wait_for(pilot, lambda: _texts(view) == ["early-1", "early-2", "late-1", "late-2"], timeout=30)
            await pilot.press("s")  # all
            assert await wait_for(pilot, lambda: len(asked) == 3 and len(_texts(view)) == 4, timeout=30)
            assert asked == [pytest.approx(late - 0.5), pytest.approx(late - 3300.5), None]
            await pilot.press("escape")
    finally:
        container.remove(force=True)
