"""JSON-RPC filters shared by the whole cluster (eth_newFilter ... eth_getFilterChanges).

``store``: this replica's copy of the compacted filter topic (plain data); ``reader``: the
service that follows the topic into the store and publishes this replica's writes;
``methods``: the JSON-RPC namespace over the store.
"""
