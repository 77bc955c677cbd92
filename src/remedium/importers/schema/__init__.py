"""The published JSON Schema of the native report format."""
