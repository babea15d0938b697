"""``python -m api_cli`` runs the ``trainq`` command."""

from api_cli.entry import run

run()
