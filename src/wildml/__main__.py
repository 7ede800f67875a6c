"""Allow ``python -m wildml``."""

from wildml.cli import main

main()
