"""The ground floor of following jobs: state-change events, polling one job, call budgets.

Clients poll through these (`client.wait`) and the shared watchers in `gcpjobs.watch` build on
them, so they live below both: they import only the plain types (`states`, `results`,
`errors`). `gcpjobs.watch.events`, `.poll` and `.ratelimit` re-export them under their old
names.
"""
