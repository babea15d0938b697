"""What every command needs, built lazily so that ``trainq --help`` imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from api_cli.sdk import Client
    from storage import Repository, Settings
    from storage.quick_reads import QuickReader
    from worker.cluster.publisher import Dispatcher


@dataclass
class AppState:
    """Global options and lazily opened connections for one CLI invocation."""

    debug: bool = False

    @cached_property
    def settings(self) -> Settings:
        """Settings from ``TRAINQ_*`` (read once)."""
        from storage import Settings

        return Settings.from_env()

    @cached_property
    def repository(self) -> Repository:
        """The repository, with the schema checked (and created, for the embedded SQLite)."""
        if "client" in self.__dict__:  # one repository per invocation
            client: Client = self.__dict__["client"]
            return client.repository
        from storage import Database, Repository

        database = Database(self.settings.database_url)
        # The embedded default must work on a fresh machine; a shared cluster database is
        # migrated on purpose, by `trainq db upgrade` (the compose file's one-shot service).
        database.ensure_schema(auto_upgrade=self.settings.embedded)
        return Repository(database)

    def open_quick_reader(self) -> QuickReader | None:
        """Reads without SQLAlchemy (``storage.quick_reads``; close it), or None where they do
        not apply: then use :attr:`repository`."""
        if "repository" in self.__dict__ or "client" in self.__dict__:
            return None  # SQLAlchemy is loaded already: nothing left to save
        from storage.quick_reads import QuickReader

        return QuickReader.open(self.settings.database_url)

    @cached_property
    def client(self) -> Client:
        """The Python API on this invocation's settings and repository: submitting goes through
        its dispatcher, chosen once from the settings (in this process, or the broker)."""
        from api_cli.sdk import Client

        # The repository only if a command already opened it; otherwise the client opens it when
        # first used, so `trainq train` starts TensorFlow's import (Client.ready_for_one_run)
        # before SQLAlchemy's and the schema check rather than after them.
        return Client(self.settings, repository=self.__dict__.get("repository"))

    @cached_property
    def dispatcher(self) -> Dispatcher:
        """The broker's publisher, for inspecting the cluster (`trainq status`); cluster only."""
        from worker.cluster.publisher import publisher_for

        return publisher_for(self.settings)


STATE = AppState()
