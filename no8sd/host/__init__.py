"""Runs plugins: discovery, supervision, the ReconcilerContext implementation, the
registries of action plugins and secret stores, and the event-loop watchdog."""
