"""The Typer app: one verb per capability, no logic beyond argument handling."""
