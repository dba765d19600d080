"""Docker endpoints and libvirt connections: a list of addresses, of mappings, or a
comma-separated string (the environment's form), each named and the names unique."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from console.config.grammars import (
    _NAME, _Context, _Invalid, _bool, _endpoint_name, _list_items, _located, _mapping, _path, _scalar, _text,
    _text_at, parse_docker_host, parse_libvirt_uri,
)
from backends.docker.settings import DockerEndpoint, TlsSettings
from backends.libvirt.settings import LibvirtConnection


def _docker_endpoints(node: Node, ctx: _Context) -> tuple[DockerEndpoint, ...]:
    endpoints: list[tuple[DockerEndpoint, Node]] = []
    if isinstance(node, SequenceNode):
        for item in node.value:
            endpoints.append((_docker_endpoint(item, ctx), item))
    else:
        for item, text, offset in _list_items(node, "Docker host addresses"):
            endpoints.append((_located(lambda: _docker_from_address(text), item, offset), item))
    return _unique_names(_name_sockets(endpoints), "Docker endpoint")


def _name_sockets(endpoints: list[tuple[DockerEndpoint, Node]]) -> list[tuple[DockerEndpoint, Node]]:
    """One unnamed socket is "local"; several are named from their paths (the file name
    without `.sock`, with as many parent folders in front as make the names unique)."""
    unnamed = [i for i, (endpoint, node) in enumerate(endpoints) if endpoint.host.startswith("unix://")
               and endpoint.name == "local" and not (isinstance(node, MappingNode) and _has_key(node, "name"))]
    if len(unnamed) < 2:
        return endpoints
    paths = [[re.sub(r"[^A-Za-z0-9_.-]", "-", part).lstrip(".-") or "socket"
              for part in reversed(Path(endpoints[i][0].host[len("unix://"):].removesuffix(".sock")).parts[1:])]
             for i in unnamed]
    depth = 1
    while depth < max(len(parts) for parts in paths) and len({tuple(p[:depth]) for p in paths}) < len(paths):
        depth += 1
    renamed = list(endpoints)
    for i, parts in zip(unnamed, paths):
        endpoint, node = endpoints[i]
        renamed[i] = (DockerEndpoint("-".join(reversed(parts[:depth])), endpoint.host, endpoint.tls), node)
    return renamed


def _has_key(node: MappingNode, key: str) -> bool:
    return any(isinstance(k, ScalarNode) and k.value == key for k, _ in node.value)


def _docker_from_address(address: str) -> DockerEndpoint:
    return DockerEndpoint(_endpoint_name(address), parse_docker_host(address))


def _docker_endpoint(node: Node, ctx: _Context) -> DockerEndpoint:
    if isinstance(node, ScalarNode):
        text = _text_at(node, "a Docker host address")
        return _located(lambda: _docker_from_address(text), node, 0)
    entries = _mapping(node, ("name", "host", "tls"), "a Docker endpoint", required=("host",))
    host_node = entries["host"][1]
    host = _located(lambda: parse_docker_host(_text(host_node, "a Docker host address")), host_node, 0)
    name = _name_at(entries, host)
    tls = None
    if "tls" in entries:
        tls_key, tls_node = entries["tls"]
        tls = _tls(tls_node, ctx)
        if tls is not None and not host.startswith("tcp://"):
            raise _Invalid("tls applies to tcp:// hosts only", "remove it, or use a tcp:// host",
                           node=tls_key)
    return DockerEndpoint(name, host, tls)


def _tls(node: Node, ctx: _Context) -> TlsSettings | None:
    if isinstance(node, ScalarNode) and _scalar(node, "") is None:
        return None
    entries = _mapping(node, ("ca", "cert", "key", "verify"), "TLS settings")
    values: dict[str, Any] = {}
    for name, (_, value_node) in entries.items():
        parse = _bool if name == "verify" else _path
        values[name] = _located(lambda: parse(value_node, ctx), value_node, 0)
    if ("cert" in values) != ("key" in values):
        raise _Invalid("tls needs both cert and key, or neither", node=node)
    return TlsSettings(**values)


def _libvirt_uris(node: Node, ctx: _Context) -> tuple[LibvirtConnection, ...]:
    connections: list[tuple[LibvirtConnection, Node]] = []
    if isinstance(node, SequenceNode):
        for item in node.value:
            if isinstance(item, ScalarNode):
                text = _text_at(item, "a libvirt URI")
                connections.append((_located(lambda: _libvirt_from_uri(text), item, 0), item))
                continue
            entries = _mapping(item, ("name", "uri"), "a libvirt connection", required=("uri",))
            uri_node = entries["uri"][1]
            uri = _located(lambda: parse_libvirt_uri(_text(uri_node, "a libvirt URI")), uri_node, 0)
            connections.append((LibvirtConnection(_name_at(entries, uri), uri), item))
    else:
        for item, text, offset in _list_items(node, "libvirt URIs"):
            connections.append((_located(lambda: _libvirt_from_uri(text), item, offset), item))
    return _unique_names(connections, "libvirt connection")


def _libvirt_from_uri(uri: str) -> LibvirtConnection:
    return LibvirtConnection(_endpoint_name(parse_libvirt_uri(uri)), uri)


def _name_at(entries: Mapping[str, tuple[Node, Node]], address: str) -> str:
    if "name" not in entries:
        return _endpoint_name(address)
    name_node = entries["name"][1]
    name = _text_at(name_node, "a name")
    if not _NAME.match(name):
        raise _Invalid(f"name {name!r} may only hold letters, digits, '.', '_' and '-'",
                       node=name_node)
    return name


def _unique_names(items: list[tuple[Any, Node]], what: str) -> tuple[Any, ...]:
    """The items, once each name is known to be unique; a clash points at the second one."""
    seen: set[str] = set()
    for item, node in items:
        if item.name in seen:
            raise _Invalid(f"two {what}s are named {item.name!r}",
                           "give each one its own name: with 'name:'", node=node)
        seen.add(item.name)
    return tuple(item for item, _ in items)
