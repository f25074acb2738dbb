"""The accessibility audit the browser tests run: axe-core's serious and critical violations."""

from __future__ import annotations

from typing import Any

__all__ = ["serious_violations"]


def serious_violations(page: Any, source: str) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on ``page`` as it is now (``source``: axe.min.js)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(source)  # DevTools evaluation: not subject to the page's CSP
    found = page.evaluate(
        """async () => {
          const r = await axe.run(document, {resultTypes: ["violations"]});
          return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                          nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}));
        }"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]
