"""acceldoctor explain: read logs, say what happened, why, and what to do."""
