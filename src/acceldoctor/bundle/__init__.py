"""The support bundle (`acceldoctor bundle`): what a vendor engineer asks for first, in one .tar.gz, secrets redacted.

build.py writes the archive; collect.py and tools.py gather its items, logs.py copies logs capped, redact.py
removes secrets from all of it. Import from those modules: this package re-exports nothing.
"""
