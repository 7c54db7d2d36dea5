"""Run and event storage: the RunStorage protocol, SQLite implementation, batched EventWriter."""
