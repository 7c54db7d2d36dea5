"""The code server: `runtime api grpc` serving one code location over grpclib.

`main.run_server` owns the process (signals, ready line, heartbeat, parent
death); `location.LocationState` loads user code off the event loop and keeps
the encoded snapshot; `service.CodeLocationService` answers the RPCs.
"""
