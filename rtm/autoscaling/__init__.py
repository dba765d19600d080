"""Autoscaling decisions: horizontal (replica counts, as the Kubernetes HPA) and vertical
(cpu and memory limits, as the VPA), plus the history the horizontal decisions remember.

Pure: time is passed in, nothing is executed here.
"""

from rtm.autoscaling.history import History, HistoryFormatError, Recommendation, ScaleEvent
from rtm.autoscaling.horizontal import Decision, decide, utilization_from_usage
from rtm.autoscaling.measure import ReplicaUsage, ResourceAmounts, resource_utilization, workload_utilization
from rtm.autoscaling.settings import (
    DEFAULT_SCALE_DOWN_RULES,
    DEFAULT_SCALE_UP_RULES,
    Behavior,
    HorizontalSettings,
    RatePolicy,
    ScalingRules,
    scaling_rules_with_defaults,
)
from rtm.autoscaling.vertical import (
    DEFAULT_MEMORY_STEP_BYTES,
    ResourceRecommendation,
    VerticalRecommendation,
    VerticalSettings,
    percentile,
    recommend_vertical,
)

__all__ = [
    "DEFAULT_MEMORY_STEP_BYTES",
    "DEFAULT_SCALE_DOWN_RULES",
    "DEFAULT_SCALE_UP_RULES",
    "Behavior",
    "Decision",
    "History",
    "HistoryFormatError",
    "HorizontalSettings",
    "RatePolicy",
    "ReplicaUsage",
    "ResourceAmounts",
    "Recommendation",
    "ResourceRecommendation",
    "ScaleEvent",
    "ScalingRules",
    "VerticalRecommendation",
    "VerticalSettings",
    "decide",
    "percentile",
    "recommend_vertical",
    "resource_utilization",
    "scaling_rules_with_defaults",
    "utilization_from_usage",
    "workload_utilization",
]
