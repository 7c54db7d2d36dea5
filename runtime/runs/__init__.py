"""Runs on the host: launching them into code locations, following their events, their results."""
