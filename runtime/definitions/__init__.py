"""The authoring API: what user code imports to define assets, ops, jobs, schedules and sensors."""
