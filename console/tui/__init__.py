"""The interactive console: the only package of rtm-console that imports textual.

Layout:
- app.py           the App: header, panes, bindings, poller subscription, action runner
- views.py         records -> table rows (pure: no textual, testable and benchmarked)
- table_diff.py    old rows + new rows -> what to add, remove and which cells changed (pure)
- sparkline_history.py per-node series for the sparklines, rates from cumulative counters (pure)
- offered_actions.py  which gated actions the console offers for a resource kind (pure, reads the gate registry)
- planning.py      spec documents -> scheduler and autoscaler inputs (pure)
- widgets/, panes/, screens/   the textual parts
- textual_compat.py  every use of Textual's private internals; checks the installed version first
- registry.py      the panes: id, title, key, class, the kiosk's cycle
- navigation.py    the `:` prompt and the command palette's entries (mixed into the app)
- typeahead.py     keys typed while the focus moves wait, then go on in order
- gated.py         the resource actions, shells and consoles, run through the action gate
- sessions.py      the argv of a container shell or a VM's serial console
- console_services.py what the app is given: live data and the way changes are made
"""
