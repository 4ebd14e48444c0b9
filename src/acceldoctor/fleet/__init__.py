"""Fleet diagnosis: many nodes' reports in, the defective nodes and devices out (`acceldoctor diagnose`)."""
