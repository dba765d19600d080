"""The live nodes: every configured runtime merged into the machine that carries it."""

from __future__ import annotations

import os
import socket

import pytest

from backends.docker import DockerBackend
from backends.host import HostBackend
from console.live_nodes import live_nodes, machine_nodes
from rtm.scheduling import SchedNode


def runtime(node_id: str, machine: str, runtimes: set[str], cordoned: bool = False) -> SchedNode:
    return SchedNode(node_id, "z", 4000, 8 << 30, {"hostname": machine, "zone": "z"}, runtimes=frozenset(runtimes), cordoned=cordoned)


def test_runtimes_of_one_machine_are_one_node_and_a_remote_machine_is_another() -> None:
    host = SchedNode("vm", "local", 2000, 4 << 30, {"zone": "local"}, runtimes=frozenset())
    merged = machine_nodes([host], [runtime("local", "vm", {"docker"}), runtime("qemu", "vm", {"libvirt"}, cordoned=True),
                                    runtime("far-engine", "far", {"docker"})])
    assert [(n.id, sorted(n.runtimes), n.cordoned, n.cpu_millis) for n in merged] == [
        ("vm", ["docker", "libvirt"], True, 2000),  # the host's capacity, its runtimes, cordoned through its libvirt host
        ("far", ["docker"], False, 4000),  # known only through its engine: the engine's capacity
    ]


def test_a_machine_cordoned_in_the_store_is_cordoned_whatever_its_runtimes_say() -> None:
    (node,) = machine_nodes([], [runtime("local", "vm", {"docker"})], cordoned=lambda machine: machine == "vm")
    assert node.cordoned


@pytest.mark.docker
def test_live_nodes_merge_the_docker_engine_and_libvirt_host_into_this_machine(docker_client, libvirt_uri) -> None:
    from backends.libvirt import make_libvirt_backends

    docker = DockerBackend(os.environ["DOCKER_HOST"], cordoned=lambda machine: machine == socket.gethostname())
    (libvirt,) = make_libvirt_backends([libvirt_uri])
    try:
        nodes = live_nodes([HostBackend(), docker, libvirt])
    finally:
        docker.close()
        libvirt.close()
    assert [n.id for n in nodes] == [socket.gethostname()] == [docker_client.info()["Name"]]
    assert nodes[0].runtimes == {"docker", "libvirt"} and nodes[0].cordoned


@pytest.mark.docker
def test_the_placement_preview_sees_the_engine_in_its_machine_and_its_cordon(docker_client) -> None:
    from console.tui.planning import nodes_from_live
    from rtm.scheduling import Requirements, schedule

    host = HostBackend()
    docker = DockerBackend(os.environ["DOCKER_HOST"], cordoned=lambda machine: machine == socket.gethostname())
    try:
        (node,) = nodes_from_live(list(host.poll().items), [host, docker])
    finally:
        docker.close()
    assert node.id == socket.gethostname() and "docker" in node.runtimes and node.cordoned
    result = schedule([node], Requirements(100, 1 << 20, runtime="docker"), 1, "round_robin")
    assert result.placements[0].reason == "0/1 nodes are available: 1 node(s) were unschedulable."
