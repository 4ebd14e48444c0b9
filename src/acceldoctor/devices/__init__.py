"""What accelerators exist: identity, memory and software stack versions."""
