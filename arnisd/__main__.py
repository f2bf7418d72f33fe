"""Entry point for `python -m arnisd`."""

import sys

from arnisd.cli import main

if __name__ == "__main__":
    sys.exit(main())
