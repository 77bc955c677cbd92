"""Users, roles, device-group scoping, sessions and API tokens."""
