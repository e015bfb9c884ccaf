"""The ``platfone`` command (``python -m platfone_async``), built on public names only.

Parsing needs only the standard library, so the base install runs ``platfone demo``;
tables and the live display need rich, from the ``cli`` extra
(``pip install 'platfone-async[cli]'``, or ``pip install -e '.[cli]'`` from a checkout);
``--json`` needs nothing more.
"""

from ._app import amain, main

__all__ = ["amain", "main"]
