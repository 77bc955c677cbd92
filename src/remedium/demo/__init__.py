"""The deterministic demo organisation (``remedium demo``): see :func:`build_demo`."""

from remedium.demo.generator import DEMO_SOURCE, DemoSummary, build_demo, holds_demo

__all__ = ["DEMO_SOURCE", "DemoSummary", "build_demo", "holds_demo"]
