"""The REST API under /api/v1: one router per resource, each a thin layer over a service module's functions."""
