"""Periodic jobs (progress, retention, tickets, score history) and their run records."""
