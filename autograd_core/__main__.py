"""``python -m autograd_core`` runs the ``autograd-core`` command line."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
