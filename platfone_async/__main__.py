"""The ``platfone`` command line (``python -m platfone_async``); it lives in ``cli/``."""

import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
