"""The HTTP application: app factory, shared dependencies, health."""
