"""``python -m gantool`` runs the same CLI as the ``gantool`` console script."""

from gantool.cli import main

main()
