"""The command line: typer wiring, rendering and progress display."""
