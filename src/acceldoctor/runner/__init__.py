"""Run checks in isolated, reused child processes with timeouts; stream results as they finish."""
