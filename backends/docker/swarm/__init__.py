"""Docker Swarm: a configured engine that is a Swarm manager is a cluster (docs/swarm.md).

Modules, one job each:
- cluster.py  which engines are managers and workers (docker info), the swarm's nodes, availability
- discovery.py the clusters among the engines found once per refresh for all who need them (the
              control loops' jobs and the poll), not once per job
- spec.py     PURE: a ContainerRuntime workload -> a ServiceSpec, with warnings for what it cannot carry
- services.py one service per workload: plan with a field diff, create/update, scale with the
              version index (tasks kept), delete, tasks
- task_changes.py PURE: what Swarm did between two looks (failed, restarted, rescheduled tasks; nodes down/up)
- task_addresses.py PURE: where a load balancer on this host reaches a service's running tasks
- target.py   whether a workload goes to a cluster, and the container handler's calls for it
- observer.py what a manager's poll sees: services' desired and running replicas, nodes, task
              replacements (exporter), each slot's current task as a container row
- tasks.py    tasks as container rows (node, service, states); a slot's task history read from the manager
- task_stats.py the statistics of a few task containers, read by id on the engine of each task's node
"""
