"""PerformanceTuning: JVM, database connection pool and Redis settings, in their own tools' grammars."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rtm.kinds.values import Duration, JvmSize, MysqlSize, RedisSize
from rtm.schema import BuildContext, Where, where_field

# The flag each collector is switched on with.
GC_FLAGS = {
    "G1GC": "-XX:+UseG1GC",
    "ZGC": "-XX:+UseZGC",
    "ParallelGC": "-XX:+UseParallelGC",
    "SerialGC": "-XX:+UseSerialGC",
    "ShenandoahGC": "-XX:+UseShenandoahGC",
}
REDIS_EVICTION_POLICIES = (
    "noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
    "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
)


@dataclass(frozen=True)
class JvmTuning:
    heap_size: JvmSize
    gc_algorithm: Literal["G1GC", "ZGC", "ParallelGC", "SerialGC", "ShenandoahGC"] = "G1GC"
    gc_tuning: tuple[str, ...] = ()
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        for flag in self.gc_tuning:
            if not flag.startswith("-X"):
                ctx.error(self.where, "gc_tuning", f'"{flag}" is not a JVM option', "JVM options start with -X or -XX:")
            elif flag in GC_FLAGS.values() and flag != GC_FLAGS[self.gc_algorithm]:
                ctx.error(self.where, "gc_tuning", f"{flag} contradicts gc_algorithm {self.gc_algorithm}", f"use {GC_FLAGS[self.gc_algorithm]} or change gc_algorithm")
            elif flag.startswith("-XX:G1") and self.gc_algorithm != "G1GC":
                ctx.warning(self.where, "gc_tuning", f"{flag} only affects G1GC, not {self.gc_algorithm}")


@dataclass(frozen=True)
class ConnectionPool:
    max_connections: int = 10
    min_connections: int = 0
    connection_timeout: Duration = 30.0
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        if self.min_connections < 0:
            ctx.error(self.where, "min_connections", "min_connections cannot be negative")
        if self.max_connections < 1:
            ctx.error(self.where, "max_connections", "max_connections must be at least 1")
        if self.min_connections > self.max_connections:
            ctx.error(self.where, "min_connections", "min_connections is above max_connections")


@dataclass(frozen=True)
class QueryOptimization:
    enable_query_cache: bool = False
    query_cache_size: MysqlSize = 0
    where: Where = where_field()


@dataclass(frozen=True)
class DatabaseTuning:
    connection_pool: ConnectionPool | None = None
    query_optimization: QueryOptimization | None = None
    where: Where = where_field()


@dataclass(frozen=True)
class RedisTuning:
    max_memory: RedisSize | None = None
    eviction_policy: Literal[
        "noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
        "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
    ] = "noeviction"
    persistence: Literal["none", "rdb", "aof", "rdb+aof"] = "rdb"
    where: Where = where_field()


@dataclass(frozen=True)
class CacheTuning:
    redis: RedisTuning | None = None
    where: Where = where_field()


@dataclass(frozen=True)
class PerformanceTuning:
    jvm_tuning: JvmTuning | None = None
    database_tuning: DatabaseTuning | None = None
    cache_tuning: CacheTuning | None = None
    where: Where = where_field()
