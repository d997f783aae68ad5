"""Example reconciler plugin: Workflow resources run a GitHub Actions workflow."""
