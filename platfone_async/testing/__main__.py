"""``python -m platfone_async.testing serve --host 127.0.0.1 --port 8080``."""

import sys

from ._serve import main

if __name__ == "__main__":
    sys.exit(main())
