"""Vulnerability intelligence and security configuration checks."""
