"""The append-only audit history: who changed what, when, and why."""
