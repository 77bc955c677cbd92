"""Security recommendations: the actions that remove weaknesses."""
