#!/usr/bin/env bash
# Run every benchmark against the services from `make services-up`; each prints its ratios
# against the reference tool measured in the same run and exits 1 when it misses a goal.
# Results and the commands behind them are recorded in docs/benchmarks.md.
set -uo pipefail
cd "$(dirname "$0")/.."
[ -f .services/env ] && { set -a; . .services/env; set +a; }
PY=.venv/bin/python
status=0
for bench in scheduler_bench schedule_cli_bench placement_preview_bench docker_stats_bench exporter_bench localfn_bench console_bench glances_side_by_side scale_1000_bench swarm_requests_bench; do
    [ -f "bench/$bench.py" ] || continue
    echo "=== $bench"
    "$PY" "bench/$bench.py" "$@" || status=1
done
exit $status
