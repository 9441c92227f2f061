"""Emitters: the transaction topic forwarded to the network.

``targets``: one JSON-RPC target and how its answers classify; ``forwarder``: the consumer
group that forwards each transaction with retries and dead letters; ``service``: the worker's
service that runs it. Its table of settled transactions is ``tables.emitted``.
"""
