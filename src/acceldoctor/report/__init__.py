"""The one report model shared by the CLI, the renderers and the portal."""
