"""HTTP routes of the local gateway: `METHOD /path` keys as API Gateway HTTP APIs write them.

A route's path may hold parameters: `{name}` matches one path segment, and a final `{name+}`
matches the rest of the path (one segment or more). Like API Gateway, the most specific route
wins: a path without parameters before one with, more literal segments before fewer, a greedy
parameter last; at equal paths a route naming the method wins over `ANY`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

_PARAMETER = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\}$")


@dataclass(frozen=True)
class Route:
    method: str  # upper-case, or ANY
    path: str  # as written in the spec, starting with /
    function: str

    @property
    def key(self) -> str:
        """API Gateway's route key, e.g. "POST /api/function"."""
        return f"{self.method} {self.path}"

    def segments(self) -> list[str]:
        return [s for s in self.path.split("/") if s]

    def specificity(self) -> tuple[int, int, int, int]:
        """Sort key: smaller is tried first."""
        segments = self.segments()
        greedy = int(bool(segments) and segments[-1].endswith("+}"))
        literals = sum(1 for s in segments if not _PARAMETER.match(s))
        return greedy, -literals, -len(segments), int(self.method == "ANY")

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters if this route serves the request (`path` as sent, percent-encoded),
        else None."""
        if self.method not in ("ANY", method):
            return None
        wanted = self.segments()
        given = [s for s in path.split("/") if s]
        parameters: dict[str, str] = {}
        for index, segment in enumerate(wanted):
            found = _PARAMETER.match(segment)
            if found and found.group(2):  # {name+}: the rest, at least one segment
                if index >= len(given):
                    return None
                parameters[found.group(1)] = unquote("/".join(given[index:]))
                return parameters
            if index >= len(given):
                return None
            if found:
                parameters[found.group(1)] = unquote(given[index])
            elif segment != unquote(given[index]):
                return None
        return parameters if len(given) == len(wanted) else None


def overlaps(a: Route, b: Route) -> bool:
    """Whether two routes would claim the same requests: same path, and methods equal or one ANY.

    (Different parameter names on the same shape count as the same path, as in API Gateway.)
    """
    same_methods = a.method == b.method or "ANY" in (a.method, b.method)
    return same_methods and _shape(a.path) == _shape(b.path)


def _shape(path: str) -> tuple[str, ...]:
    shape = []
    for segment in (s for s in path.split("/") if s):
        found = _PARAMETER.match(segment)
        shape.append(("{+}" if found.group(2) else "{}") if found else segment)
    return tuple(shape)


class RouteTable:
    """An immutable set of routes, matched most specific first."""

    def __init__(self, routes: Iterable[Route] = ()) -> None:
        self.routes = tuple(sorted(routes, key=lambda r: (r.specificity(), r.path, r.method)))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:  # most specific first
            parameters = route.match(method, path)
            if parameters is not None:
                return route, parameters
        return None

    def conflicts(self, function: str, routes: Iterable[Route]) -> list[tuple[Route, Route]]:
        """(new route, existing route of another function) pairs that would claim the same requests."""
        return [(new, old) for new in routes for old in self.routes
                if old.function != function and overlaps(new, old)]

    @classmethod
    def from_functions(cls, functions: Mapping[str, Iterable[tuple[str, str]]]) -> RouteTable:
        """From {function: [(method, path), ...]}."""
        return cls(Route(method, path, name) for name, pairs in functions.items() for method, path in pairs)
