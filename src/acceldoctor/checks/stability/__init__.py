"""Checks that load a device for a while and watch it stay correct and fast (shared with `acceldoctor stress`)."""
