"""Settings from the environment: a bad or inconsistent value stops the process, naming the variable."""

from __future__ import annotations

import pytest

from cluster.settings import SettingsError, load_settings

REQUIRED = {"broker": "kafka://127.0.0.1:9092", "cluster": "main", "secret": "a-cluster-secret-0123", "datadir": "/nonexistent"}


def test_a_bad_value_names_its_variable() -> None:
    with pytest.raises(SettingsError, match=r"ETHERCATTLE_BROKER: 'http://x:1' is not kafka://HOST:PORT"):
        load_settings(**{**REQUIRED, "broker": "http://x:1"})


def test_a_transaction_retention_shorter_than_the_pending_ttl_is_refused_naming_both() -> None:
    with pytest.raises(SettingsError, match=r"ETHERCATTLE_TRANSACTION_RETENTION \(600s\) is shorter than .*PENDING_TTL"):
        load_settings(**REQUIRED, transaction_retention=600, pending_ttl=900)


def test_consistent_settings_load() -> None:
    assert load_settings(**REQUIRED, transaction_retention=900, pending_ttl=900).transaction_retention == 900


def test_status_peers_are_grouped_by_cluster_in_the_order_named() -> None:
    settings = load_settings(**REQUIRED, status_peers="b=http://10.0.0.2:8546/, c=https://c.example/ethercattle,b=http://10.0.0.3:8546")
    assert settings.status_peer_urls == {"b": ["http://10.0.0.2:8546", "http://10.0.0.3:8546"],
                                         "c": ["https://c.example/ethercattle"]}


@pytest.mark.parametrize("peers", ["http://10.0.0.2:8546", "b=ftp://x", "b=http://x/?next=http://y", "b=http://user:pw@x",
                                   "-b=http://x"])
def test_a_status_peer_that_is_not_a_named_http_url_is_refused(peers: str) -> None:
    with pytest.raises(SettingsError, match="ETHERCATTLE_STATUS_PEERS"):
        load_settings(**REQUIRED, status_peers=peers)


def test_a_status_peer_named_like_this_cluster_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"STATUS_PEERS names this cluster \(main\)"):
        load_settings(**REQUIRED, status_peers="main=http://10.0.0.2:8546")
