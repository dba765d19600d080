"""Render a PerformanceTuning spec into what each tool reads: JVM options, pool settings, redis.conf."""

from __future__ import annotations

from rtm.kinds.tuning import GC_FLAGS, ConnectionPool, JvmTuning, PerformanceTuning, QueryOptimization, RedisTuning
from rtm.sizes import format_jvm_size


def jvm_options(jvm: JvmTuning) -> str:
    """`-Xms2g -Xmx2g -XX:+UseG1GC ...`: a fixed heap (min = max avoids resize pauses), the
    collector flag once, then the extra tuning flags in the order given."""
    heap = format_jvm_size(jvm.heap_size)
    options = [f"-Xms{heap}", f"-Xmx{heap}", GC_FLAGS[jvm.gc_algorithm]]
    options += [flag for flag in jvm.gc_tuning if flag not in options]
    return " ".join(options)


def pool_settings(pool: ConnectionPool) -> dict[str, int]:
    """HikariCP's names, the common JDBC pool: sizes, and the timeout in milliseconds."""
    return {
        "maximumPoolSize": pool.max_connections,
        "minimumIdle": pool.min_connections,
        "connectionTimeout": round(pool.connection_timeout * 1000),
    }


def mysql_lines(query: QueryOptimization) -> list[str]:
    """my.cnf lines for the query cache (MySQL 5.7 and MariaDB; MySQL 8 removed it)."""
    return [
        f"query_cache_type = {1 if query.enable_query_cache else 0}",
        f"query_cache_size = {query.query_cache_size if query.enable_query_cache else 0}",
    ]


def redis_lines(redis: RedisTuning) -> list[str]:
    """redis.conf lines; maxmemory in bytes so no reader has to know Redis' 1g vs 1gb rule."""
    lines = []
    if redis.max_memory is not None:
        lines.append(f"maxmemory {redis.max_memory}")
    lines.append(f"maxmemory-policy {redis.eviction_policy}")
    lines.append(f"appendonly {'yes' if 'aof' in redis.persistence else 'no'}")
    if "aof" in redis.persistence:
        lines.append("appendfsync everysec")
    lines.append('save ""' if "rdb" not in redis.persistence else "save 3600 1 300 100 60 10000")
    return lines


def render_tuning(spec: PerformanceTuning) -> dict:
    """Everything a PerformanceTuning spec becomes, as one JSON-ready mapping."""
    rendered: dict = {}
    if spec.jvm_tuning is not None:
        rendered["jvm"] = {"JAVA_TOOL_OPTIONS": jvm_options(spec.jvm_tuning)}
    database = spec.database_tuning
    if database is not None and database.connection_pool is not None:
        rendered["connection_pool"] = pool_settings(database.connection_pool)
    if database is not None and database.query_optimization is not None:
        rendered["my.cnf"] = mysql_lines(database.query_optimization)
    if spec.cache_tuning is not None and spec.cache_tuning.redis is not None:
        rendered["redis.conf"] = redis_lines(spec.cache_tuning.redis)
    return rendered
