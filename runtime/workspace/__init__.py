"""The host side: workspace files and targets, supervised code locations, the Workspace API."""
