"""The execution engine: plan a run, schedule its steps, pass outputs between them, emit its events.

`job_run` is what the code server calls (validate, prepare, execute a run of
a repository's job); `scheduler.execute_plan` runs a plan's steps under
limits; `executors` and `step_runner` are the registries that decide where
each step's function is called; `in_process` is the users' own-test API.
"""
