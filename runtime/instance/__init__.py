"""The instance: where runs and their events are stored, and how runs are coordinated.

`Instance` (runtime.instance.instance) reads instance.yaml in RUNTIME_HOME and
owns the storage; `records` defines what is stored; `storage` holds the
RunStorage protocol and its SQLite implementation.
"""
