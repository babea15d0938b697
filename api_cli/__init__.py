"""api_cli: the ``trainq`` command line."""
