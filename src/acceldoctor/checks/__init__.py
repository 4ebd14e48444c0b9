"""The registry of checks. Each check is one module under a category package."""
