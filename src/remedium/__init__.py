"""remedium: vulnerability remediation and exception management."""

__version__ = "0.1.0"
