"""Scenario "demo": the product's own demo organisation (``remedium.demo``) at 150 devices, a
month of imports and history, as an analyst would see it."""

from __future__ import annotations

from sqlalchemy import Engine

from remedium.demo.generator import build_demo

DEVICES = 150


def build_demo_org(engine: Engine) -> None:
    """Build the demo organisation (committed as it goes)."""
    build_demo(engine, devices=DEVICES)
