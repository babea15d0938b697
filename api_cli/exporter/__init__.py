"""``trainq exporter``: the queue's numbers for Prometheus, read from the database and the broker
at every scrape (``docs/cluster.md``, "Prometheus")."""
