"""The dask executor: every step of a run is a task on a Dask cluster (`pip install 'runtime[dask]'`).

Choose it in instance.yaml (`executor: {kind: dask, dask: {scheduler_address:
tcp://host:8786}}`) or per run (`execution: {dask: {...}}` in run config);
without `scheduler_address` each run starts a LocalCluster of its own and
closes it after. `options` checks the options without importing Dask,
`runner` is the StepRunner (on the code server's loop), `worker` what runs
on the workers; outputs pass through runtime.execution.fsspec_io. Importing
this package imports neither Dask nor fsspec.
"""
