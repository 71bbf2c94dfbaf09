"""``python -m embedder``: see :mod:`embedder.cli`."""

import sys

from embedder.cli import main

if __name__ == "__main__":
    sys.exit(main())
