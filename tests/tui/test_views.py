"""What the panes show, computed without a terminal: rows, the refresh diff, node history."""

from __future__ import annotations

import dataclasses

from backends.records import ContainerInfo, DiskIO, NetIO
from console.tui.sparkline_history import NodeHistory
from console.tui.table_diff import diff_rows
from console.tui.views import (
    RowBuilder,
    container_row,
    human_bytes,
    human_duration,
    matches_filter,
    node_row,
    percent,
)
from tui.fixtures.recorded import FROZEN_NOW, load_recording


def _container(name: str = "web-0", **changes) -> ContainerInfo:
    base = ContainerInfo(
        id=name, name=name, workload="web", replica=0, engine="docker@local", state="running",
        health="healthy", image="busybox", ports=("8080->80/tcp",), started_at=FROZEN_NOW - 3725,
        cpu_ratio=0.25, cpu_seconds_total=1.0, memory_working_set_bytes=3 * 1024 * 1024,
        memory_limit_bytes=64 * 1024 * 1024, restarts=0, net_rx_bytes=0, net_tx_bytes=0,
        net_rx_packets=0, net_tx_packets=0, block_read_bytes=0, block_write_bytes=0,
    )
    return dataclasses.replace(base, **changes)


def test_formatting_reads_like_a_person_would_write_it() -> None:
    assert human_bytes(1536) == "1.5KiB"
    assert human_bytes(None) == "-"
    assert percent(0.123) == "12.3%"
    assert human_duration(3725) == "1h2m"
    assert human_duration(45) == "45s"
    assert human_duration(2 * 86400 + 7200) == "2d2h"


def test_container_row_shows_state_usage_and_uptime() -> None:
    row = container_row(_container(), "docker@local", FROZEN_NOW)
    assert row.key == "docker@local/web-0"
    assert row.cells[:7] == ("web-0", "running", "healthy", "25.0%", "3.0MiB / 64.0MiB", "0", "1h2m")
    stopped = container_row(_container(state="exited", cpu_ratio=None), "docker@local", FROZEN_NOW)
    assert stopped.cells[3] == "-" and stopped.cells[6] == "-"


def test_node_row_from_a_real_host_recording() -> None:
    state = load_recording("host-recorded.json")[-1]
    node = state.backends["host"].snapshot.items[0]
    row = node_row(node, "host")
    assert row.name == "node-a"
    assert row.cells[1] in ("Ready", "Ready !", "Cordoned")
    assert row.cells[3].endswith(human_bytes(node.memory_bytes_total))


def test_unchanged_records_reuse_their_rows() -> None:
    builder = RowBuilder("containers")
    first = builder.build([("docker@local", _container("a")), ("docker@local", _container("b"))], FROZEN_NOW)
    again = builder.build([("docker@local", _container("a")), ("docker@local", _container("b", restarts=2))], FROZEN_NOW)
    assert again[0] is first[0]  # same record, same second: the same row object
    assert again[1] is not first[1] and again[1].cells[5] == "2"


def test_uptime_moves_even_when_the_record_does_not() -> None:
    builder = RowBuilder("containers")
    before = builder.build([("e", _container())], FROZEN_NOW)[0]
    later = builder.build([("e", _container())], FROZEN_NOW + 120)[0]
    assert before.cells[6] == "1h2m" and later.cells[6] == "1h4m"


def test_diff_names_only_the_cells_that_changed() -> None:
    builder = RowBuilder("containers")
    old = builder.build([("e", _container("a")), ("e", _container("b")), ("e", _container("c"))], FROZEN_NOW)
    new = builder.build([("e", _container("a", cpu_ratio=0.5)), ("e", _container("c")), ("e", _container("d"))], FROZEN_NOW)
    diff = diff_rows({row.key: row for row in old}, new)
    assert [row.name for row in diff.added] == ["d"]
    assert diff.removed == ("docker@local/b",)  # keyed by the engine that reported it
    assert [(row.name, cells) for row, cells in diff.changed] == [("a", ((3, "50.0%"),))]
    assert diff.order_changed


def test_diff_of_the_same_rows_is_empty() -> None:
    rows = RowBuilder("containers").build([("e", _container("a"))], FROZEN_NOW)
    assert diff_rows({row.key: row for row in rows}, rows).empty


def test_filter_needs_every_word_somewhere_in_the_row() -> None:
    row = container_row(_container(), "docker@local", FROZEN_NOW)
    assert matches_filter(row, "web running")
    assert matches_filter(row, "WEB")
    assert not matches_filter(row, "web exited")


def _node_with(node, disk_bytes: int, net_bytes: int, cpu: float):
    return dataclasses.replace(
        node,
        cpu_usage_ratio=cpu,
        disks=(DiskIO("sda", 0, 0, disk_bytes, 0),),
        networks=(NetIO("eth0", net_bytes, 0, 0, 0),),
    )


def test_node_history_turns_counters_into_rates() -> None:
    node = load_recording("host-recorded.json")[-1].backends["host"].snapshot.items[0]
    history = NodeHistory(points=3)
    history.add("n", _node_with(node, 1000, 5000, 0.1), 100.0)
    history.add("n", _node_with(node, 3000, 9000, 0.2), 102.0)
    assert history.rates()["n"].disk_bytes == 1000.0  # 2000 bytes in 2 s
    assert history.rates()["n"].net_rx_bytes == 2000.0
    assert not history.add("n", _node_with(node, 9999, 9999, 0.9), 102.0)  # the same poll again
    history.add("n", _node_with(node, 10, 10, 0.3), 104.0)  # counters went back (a reboot)
    assert history.rates()["n"].disk_bytes is None
    history.add("n", _node_with(node, 20, 20, 0.4), 106.0)
    series = history.series("n")
    assert [round(v) for v in series.cpu] == [20, 30, 40]  # bounded to the last 3 points


def test_node_history_forgets_nodes_that_left() -> None:
    node = load_recording("host-recorded.json")[-1].backends["host"].snapshot.items[0]
    history = NodeHistory()
    history.add("gone", node, 1.0)
    history.forget_missing(set())
    assert history.series("gone") is None
