"""One 3-broker cluster of our own for the fault tests of this package (they kill and freeze
its brokers: never the shared session broker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.chaos.cluster import Cluster


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("chaos-kafka"), brokers=3) as started:
        yield started
