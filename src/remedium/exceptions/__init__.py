"""Exceptions to security recommendations and CVEs: filing, lifecycle, resurfacing, VEX export."""
