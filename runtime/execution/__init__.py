"""The execution engine: plan a run, schedule its steps, pass outputs between them, emit its events."""
