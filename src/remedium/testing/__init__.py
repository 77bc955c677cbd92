"""Support for remedium's own tests and benchmarks (not used by the product at run time)."""
