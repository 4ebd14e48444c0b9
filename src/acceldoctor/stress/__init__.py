"""acceldoctor stress: sustained, self-checking load on every chosen device at once."""
