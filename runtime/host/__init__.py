"""The host's public facade: the Workspace that composes locations, runs and the instance."""
