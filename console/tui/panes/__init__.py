"""The console's panes, one per tab: Nodes, Containers, VMs, Functions, Specs, Events."""
