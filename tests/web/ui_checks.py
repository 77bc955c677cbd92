"""Checks the page tests share: layout overflow, and accessibility with axe-core.

axe-core comes from npm (``package.json`` pins it; ``make test`` runs
``scripts/install-test-tools.sh``, which installs it into ``node_modules/``). It is added to the
page as an init script, which the page's Content-Security-Policy does not block.
"""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# Serious and critical violations fail a page; minor and moderate ones are reported only.
FAILING_IMPACTS = ("serious", "critical")


@cache
def axe_source() -> str:
    """The source of axe-core, installed by the project's script when it is missing."""
    if not AXE.exists():
        subprocess.run([str(ROOT / "scripts" / "install-test-tools.sh")], check=True)
    return AXE.read_text("utf-8")


def with_axe(page: Any) -> Any:
    """Make axe-core available on every document ``page`` opens from now on."""
    page.add_init_script(script=axe_source())
    return page


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """The serious or critical violations of the page as it stands (WCAG 2.x A and AA rules)."""
    result = page.evaluate(
        """async () => {
          const run = await axe.run(document, {
            runOnly: {
              type: "tag",
              values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"],
            },
            resultTypes: ["violations"],
          });
          return run.violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ")),
          }));
        }"""
    )
    return [v for v in result if v["impact"] in FAILING_IMPACTS]


def overflow(page: Any) -> dict[str, int]:
    """How far the main column, the page and the widest table are wider than their box
    (0: they fit)."""
    return page.evaluate(
        """() => {
          const main = document.querySelector("main");
          const page = document.scrollingElement;
          // Tables scroll inside their wrapper rather than widen the page: none may need to.
          const tables = Array.from(document.querySelectorAll("main .table-wrap"))
            .map(w => w.scrollWidth - w.clientWidth);
          return {
            main: main ? main.scrollWidth - main.clientWidth : 0,
            page: page.scrollWidth - page.clientWidth,
            table: Math.max(0, ...tables),
          };
        }"""
    )


def clipped_text(page: Any) -> list[str]:
    """Elements of the main column whose own text is cut off (wider than their box and not
    allowed to scroll): headings, buttons, badges, table cells, labels."""
    return page.evaluate(
        """() => {
          const out = [];
          const shown = "main h1, main h2, main .btn, main .badge, main td, main th, "
            + "main label, main .kpi .v";
          for (const el of document.querySelectorAll(shown)) {
            if (el.closest(".sr-only")) continue;  // text for screen readers only
            const style = getComputedStyle(el);
            if (style.overflowX === "auto" || style.overflowX === "scroll") continue;
            if (el.scrollWidth > el.clientWidth + 1 && style.overflowX === "hidden") {
              out.push(el.tagName + " " + el.textContent.trim().slice(0, 40));
            }
          }
          return out;
        }"""
    )
