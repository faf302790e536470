"""``python -m gconv``: the command line (see gconv/_cli.py)."""
import sys

from ._cli import main

sys.exit(main())
