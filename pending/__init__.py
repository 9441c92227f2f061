"""The cluster's pending transactions, as every replica sees them.

``pool``: the pending view (plain data); ``reader``: the service that follows the transaction
and dead-letter topics into it; ``sink``: eth_sendRawTransaction onto the transaction topic;
``chainview``: what the view needs of the replica's chain (decoding, inclusion, nonces).
"""
