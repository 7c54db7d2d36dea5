"""The code server: `runtime api grpc` serving one code location over grpclib.

`main.run_server` owns the process (signals, the ready line of
runtime.protocol.ready_line, heartbeat, parent death); `location.LocationState`
loads user code off the event loop and keeps the encoded snapshot
(`snapshot.build_snapshot`); `service.CodeLocationService` answers the RPCs,
with `runs.CodeServerRuns` for the run RPCs (the engine's
runtime.execution.job_run does the work) and `ticks` for schedules and sensors.
"""
