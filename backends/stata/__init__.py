"""Stata backend: live through pystata, batch do-files, or stored results."""
