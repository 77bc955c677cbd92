"""Small shapes shared by every feature's read side (pages of results, scope filters)."""
