"""Docker endpoints and libvirt connections: a list of addresses, of mappings, or a
comma-separated string (the environment's form), each named and the names unique."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from backends.docker.settings import DockerEndpoint, TlsSettings
from backends.libvirt.settings import LibvirtConnection
from console.config.grammars import (
    NAME_PATTERN, InvalidValue, ParseContext, boolean, endpoint_name, list_items, located, mapping_entries,
    parse_docker_host, parse_libvirt_uri, path_value, scalar, text_at, text_value,
)


def docker_endpoints(node: Node, ctx: ParseContext) -> tuple[DockerEndpoint, ...]:
    endpoints: list[tuple[DockerEndpoint, Node]] = []
    if isinstance(node, SequenceNode):
        for item in node.value:
            endpoints.append((_docker_endpoint(item, ctx), item))
    else:
        for item, text, offset in list_items(node, "Docker host addresses"):
            endpoints.append((located(lambda: _docker_from_address(text), item, offset), item))
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
    return DockerEndpoint(endpoint_name(address), parse_docker_host(address))


def _docker_endpoint(node: Node, ctx: ParseContext) -> DockerEndpoint:
    if isinstance(node, ScalarNode):
        text = text_at(node, "a Docker host address")
        return located(lambda: _docker_from_address(text), node, 0)
    entries = mapping_entries(node, ("name", "host", "tls"), "a Docker endpoint", required=("host",))
    host_node = entries["host"][1]
    host = located(lambda: parse_docker_host(text_value(host_node, "a Docker host address")), host_node, 0)
    name = _name_at(entries, host)
    tls = None
    if "tls" in entries:
        tls_key, tls_node = entries["tls"]
        tls = _tls(tls_node, ctx)
        if tls is not None and not host.startswith("tcp://"):
            raise InvalidValue("tls applies to tcp:// hosts only", "remove it, or use a tcp:// host",
                           node=tls_key)
    return DockerEndpoint(name, host, tls)


def _tls(node: Node, ctx: ParseContext) -> TlsSettings | None:
    if isinstance(node, ScalarNode) and scalar(node, "") is None:
        return None
    entries = mapping_entries(node, ("ca", "cert", "key", "verify"), "TLS settings")
    values: dict[str, Any] = {}
    for name, (_, value_node) in entries.items():
        parse = boolean if name == "verify" else path_value
        values[name] = located(lambda: parse(value_node, ctx), value_node, 0)
    if ("cert" in values) != ("key" in values):
        raise InvalidValue("tls needs both cert and key, or neither", node=node)
    return TlsSettings(**values)


def libvirt_uris(node: Node, ctx: ParseContext) -> tuple[LibvirtConnection, ...]:
    connections: list[tuple[LibvirtConnection, Node]] = []
    if isinstance(node, SequenceNode):
        for item in node.value:
            if isinstance(item, ScalarNode):
                text = text_at(item, "a libvirt URI")
                connections.append((located(lambda: _libvirt_from_uri(text), item, 0), item))
                continue
            entries = mapping_entries(item, ("name", "uri"), "a libvirt connection", required=("uri",))
            uri_node = entries["uri"][1]
            uri = located(lambda: parse_libvirt_uri(text_value(uri_node, "a libvirt URI")), uri_node, 0)
            connections.append((LibvirtConnection(_name_at(entries, uri), uri), item))
    else:
        for item, text, offset in list_items(node, "libvirt URIs"):
            connections.append((located(lambda: _libvirt_from_uri(text), item, offset), item))
    return _unique_names(connections, "libvirt connection")


def _libvirt_from_uri(uri: str) -> LibvirtConnection:
    return LibvirtConnection(endpoint_name(parse_libvirt_uri(uri)), uri)


def _name_at(entries: Mapping[str, tuple[Node, Node]], address: str) -> str:
    if "name" not in entries:
        return endpoint_name(address)
    name_node = entries["name"][1]
    name = text_at(name_node, "a name")
    if not NAME_PATTERN.match(name):
        raise InvalidValue(f"name {name!r} may only hold letters, digits, '.', '_' and '-'",
                       node=name_node)
    return name


def _unique_names(items: list[tuple[Any, Node]], what: str) -> tuple[Any, ...]:
    """The items, once each name is known to be unique; a clash points at the second one."""
    seen: set[str] = set()
    for item, node in items:
        if item.name in seen:
            raise InvalidValue(f"two {what}s are named {item.name!r}",
                           "give each one its own name: with 'name:'", node=node)
        seen.add(item.name)
    return tuple(item for item, _ in items)
