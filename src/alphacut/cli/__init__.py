"""The command line: a thin adapter that turns options into :class:`~alphacut.options.Options`
and calls the library (:mod:`alphacut.jobs`, :mod:`alphacut.batch`, :mod:`alphacut.watch`,
:mod:`alphacut.web`).

One module per command (or group); :mod:`~alphacut.cli.common` holds the engine options and
the one place they become an :class:`~alphacut.options.Options`. The commands import
nothing from this package's ``__init__``, so there is no import loop: it only assembles them.

Exit codes: 0 all done (or skipped), 1 some inputs (or the run) failed, 2 usage error,
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import click

from .. import __version__
from .batch import batch, watch
from .cut import cut
from .doctor import doctor
from .models import models_group, runtime_group
from .serve import serve

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="alphacut")
def cli() -> None:
    """Local AI background removal: the pixels never leave your machine."""


for _command in (cut, models_group, runtime_group, serve, doctor, batch, watch):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="alphacut")
