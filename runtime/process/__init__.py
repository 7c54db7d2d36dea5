"""One code-server subprocess: spawn it, wait for its ready line and its load, keep it alive, stop it.

Both the workspace's supervisors and the run workers of `runs/` own their code
servers through this package, so spawning, heartbeats and the start-up
deadline behave the same wherever a code server is started.
"""
