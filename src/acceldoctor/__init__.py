"""acceldoctor: a vendor-neutral doctor for AI accelerators."""

__version__ = "0.1.0"
