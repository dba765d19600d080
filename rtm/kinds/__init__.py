"""The spec kinds of the Runtime Standard Model, one module each, plus `Nodes`.

`KINDS` maps the top-level YAML key to its dataclass; `RUNTIME_KINDS` are the ones a workload
runs (exactly one per workload), the others are policies that govern it.
"""

from rtm.kinds.autoscaling import AutoScalingPolicy
from rtm.kinds.container import ContainerRuntime
from rtm.kinds.failover import FailoverStrategy
from rtm.kinds.health import HealthCheck
from rtm.kinds.metrics import ResourceMetrics
from rtm.kinds.node_inventory import NodeSpec
from rtm.kinds.scheduling import SchedulingPolicy
from rtm.kinds.serverless import ServerlessRuntime
from rtm.kinds.tuning import PerformanceTuning
from rtm.kinds.vm import VirtualMachineRuntime

KINDS: dict[str, type] = {
    "ContainerRuntime": ContainerRuntime,
    "VirtualMachineRuntime": VirtualMachineRuntime,
    "ServerlessRuntime": ServerlessRuntime,
    "SchedulingPolicy": SchedulingPolicy,
    "ResourceMetrics": ResourceMetrics,
    "AutoScalingPolicy": AutoScalingPolicy,
    "PerformanceTuning": PerformanceTuning,
    "HealthCheck": HealthCheck,
    "FailoverStrategy": FailoverStrategy,
}

RUNTIME_KINDS = ("ContainerRuntime", "VirtualMachineRuntime", "ServerlessRuntime")

__all__ = [
    "KINDS",
    "RUNTIME_KINDS",
    "AutoScalingPolicy",
    "ContainerRuntime",
    "FailoverStrategy",
    "HealthCheck",
    "NodeSpec",
    "PerformanceTuning",
    "ResourceMetrics",
    "SchedulingPolicy",
    "ServerlessRuntime",
    "VirtualMachineRuntime",
]
