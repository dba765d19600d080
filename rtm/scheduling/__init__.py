"""The scheduler: resource-accounted placement of replicas on nodes, with round robin, least
connections, smooth weighted round robin and consistent-hash ip_hash, explained the way
kube-scheduler explains an unschedulable pod."""

from rtm.scheduling.affinity import compile_affinity, matches_affinity
from rtm.scheduling.model import (
    ALGORITHMS,
    OPERATORS,
    AffinityExpr,
    NodeUsage,
    Placement,
    Requirements,
    SchedNode,
    ScheduleResult,
    parse_int64,
)
from rtm.scheduling.scheduler import (
    NO_NODES,
    REASON_AFFINITY,
    REASON_CPU,
    REASON_MEMORY,
    REASON_RUNTIME,
    REASON_UNSCHEDULABLE,
    Scheduler,
    schedule,
    unschedulable_message,
)
from rtm.scheduling.text_report import render_text

__all__ = [
    "ALGORITHMS",
    "NO_NODES",
    "OPERATORS",
    "REASON_AFFINITY",
    "REASON_CPU",
    "REASON_MEMORY",
    "REASON_RUNTIME",
    "REASON_UNSCHEDULABLE",
    "AffinityExpr",
    "NodeUsage",
    "Placement",
    "Requirements",
    "SchedNode",
    "ScheduleResult",
    "Scheduler",
    "compile_affinity",
    "matches_affinity",
    "parse_int64",
    "render_text",
    "schedule",
    "unschedulable_message",
]
