"""The instance: where runs and their events are stored, and the rules by which runs move.

`Instance` (runtime.instance.instance) reads instance.yaml in RUNTIME_HOME
(`home`), owns the storage and applies the rules over it: status transitions
(`transitions`), failing the runs of dead hosts (`orphans`), the run queue
(`run_queue`). `records` and `daemon_records` define what is stored;
`storage` holds the RunStorage protocol, the registry of storage kinds, the
SQLite implementation and the batching EventWriter.
"""
