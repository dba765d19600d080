"""Node affinity matching with Kubernetes' semantics.

Each expression is compiled once into a small predicate over a node's labels, so a run checks
affinity once per node instead of interpreting the expressions again for every replica.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

from rtm.scheduling.model import AffinityExpr, parse_int64

Labels = Mapping[str, str]
LabelPredicate = Callable[[Labels], bool]


def compile_expression(expr: AffinityExpr) -> LabelPredicate:
    key, op = expr.key, expr.operator
    if op == "In":
        allowed = frozenset(expr.values)
        return lambda labels: labels.get(key) in allowed
    if op == "NotIn":
        # A node without the label matches NotIn (labels.get gives None, never in the set).
        excluded = frozenset(expr.values)
        return lambda labels: labels.get(key) not in excluded
    if op == "Exists":
        return lambda labels: key in labels
    if op == "DoesNotExist":
        return lambda labels: key not in labels
    bound = parse_int64(expr.values[0])
    assert bound is not None  # AffinityExpr validated it
    if op == "Gt":
        return lambda labels: _greater(parse_int64(labels.get(key)), bound)
    return lambda labels: _greater(bound, parse_int64(labels.get(key)))


def _greater(left: int | None, right: int | None) -> bool:
    # Gt/Lt need the label present and parsing as an integer; otherwise no match.
    return left is not None and right is not None and left > right


def compile_affinity(terms: Sequence[Sequence[AffinityExpr]]) -> LabelPredicate:
    """One predicate for a whole required node affinity: terms ORed, expressions ANDed.
    No terms means no constraint; an empty term selects no node (Kubernetes skips it)."""
    if not terms:
        return lambda labels: True
    compiled = [[compile_expression(e) for e in term] for term in terms if term]
    return lambda labels: any(all(match(labels) for match in term) for term in compiled)


def matches_affinity(labels: Labels, terms: Sequence[Sequence[AffinityExpr]]) -> bool:
    return compile_affinity(terms)(labels)
