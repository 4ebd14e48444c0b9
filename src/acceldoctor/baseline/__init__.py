"""Spec sheets, baselines, regression and fleet-outlier rules."""
