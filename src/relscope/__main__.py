"""``python -m relscope`` runs the command line."""

from relscope.cli.main import main

main()
