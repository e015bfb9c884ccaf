"""The ``platfone`` command (``python -m platfone_async``), built on public names only.

Parsing needs only the standard library and tables print as aligned plain lines, so the
base install runs every command; rich, from the ``cli`` extra (``pip install
'platfone-async[cli]'``, or ``pip install -e '.[cli]'`` from a checkout), draws the tables
and adds colour on a terminal.
"""

from ._app import amain, main

__all__ = ["amain", "main"]
