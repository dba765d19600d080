"""Annotated value types shared by the spec kinds: each names its grammar and what it expects."""

from __future__ import annotations

from typing import Annotated

from rtm import cron, duration, quantity, sizes
from rtm.schema import Parse

Cpu = Annotated[int, Parse(quantity.cpu_millis, "a CPU quantity such as 500m or 2")]
"""Millicores (Kubernetes quantity: 0.5 == 500m)."""

Memory = Annotated[int, Parse(quantity.memory_bytes, "a memory quantity such as 512Mi or 4Gi")]
"""Bytes (Kubernetes quantity: Mi/Gi are binary, M/G decimal)."""

Duration = Annotated[float, Parse(duration.parse_duration, "a duration such as 30s, 5m or 500ms")]
"""Seconds; a bare number is seconds."""

Schedule = Annotated[cron.Schedule, Parse(cron.parse_schedule, 'a schedule such as "0 0 * * *" or "rate(5 minutes)"')]

JvmSize = Annotated[int, Parse(sizes.jvm_size_bytes, 'a JVM size such as "2g" or "512m"')]
RedisSize = Annotated[int, Parse(sizes.redis_size_bytes, 'a Redis size such as "1g" or "512mb"')]
MysqlSize = Annotated[int, Parse(sizes.mysql_size_bytes, 'a MySQL size such as "256m"')]
