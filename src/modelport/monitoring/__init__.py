"""Monitoring: metrics now; prediction logs, drift and alerts later."""
