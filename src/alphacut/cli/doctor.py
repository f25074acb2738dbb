"""``alphacut doctor``: prints what :func:`alphacut.doctor.diagnose` finds, as lines or JSON."""

from __future__ import annotations

import json

import click

__all__ = ["doctor"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print the findings as one JSON object")
def doctor(as_json: bool) -> None:
    """Print providers, GPU status, threads, model cache and versions."""
    from ..doctor import diagnose

    found = diagnose()
    if as_json:
        click.echo(json.dumps(found.as_dict(), indent=2))
    else:
        click.echo("\n".join(found.lines()))
