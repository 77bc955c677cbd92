"""remedium's tests: a package, so test support is imported by one path (``tests.support``)."""
