"""``python -m api_cli`` runs the ``trainq`` command."""

from api_cli.main import run

run()
