"""The Celery shell: everything that exists only because a job runs under Celery, billiard and
kombu.

The job itself (training, evaluation, data, sweeps' rules) lives in ``worker/`` and imports
nothing from here; this wing calls it. ``tests/test_import_rules.py`` holds the line.
"""
