"""No metadata request of the process lets the broker create a topic, whichever client builds it."""

from __future__ import annotations

import logging

import aiokafka.admin.client
import aiokafka.client
import pytest
from aiokafka.protocol.metadata import MetadataRequest

from broker import autocreate
from broker.autocreate import forbid_topic_auto_creation

NEWEST = {MetadataRequest.API_KEY: (0, 12)}


@pytest.mark.parametrize("request_class", [aiokafka.client.MetadataRequest, aiokafka.admin.client.MetadataRequest],
                         ids=["client", "admin client"])
def test_a_metadata_request_asks_without_auto_creation(request_class: type[MetadataRequest]) -> None:
    forbid_topic_auto_creation()
    built = request_class(["ethercattle.main.filters"]).prepare(NEWEST)
    assert built.API_VERSION >= 4 and built.allow_auto_topic_creation is False


def test_a_request_asking_for_auto_creation_is_built_without_it() -> None:
    forbid_topic_auto_creation()
    built = MetadataRequest(["ethercattle.main.cdc"], allow_auto_topic_creation=True).prepare(NEWEST)
    assert built.allow_auto_topic_creation is False


def test_a_broker_that_only_speaks_flagless_versions_is_named_once(caplog: pytest.LogCaptureFixture) -> None:
    forbid_topic_auto_creation()
    autocreate._warned.clear()
    with caplog.at_level(logging.WARNING, logger="ethercattle.broker"):
        for _ in range(3):
            MetadataRequest(["ethercattle.main.cdc"]).prepare({MetadataRequest.API_KEY: (0, 3)})
    assert len([r for r in caplog.records if "auto.create.topics.enable=false" in r.getMessage()]) == 1
