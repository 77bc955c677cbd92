"""Remediation activities: requests to fix a recommendation, their progress and tickets."""
