"""Talking to Kafka: topic creation and retention checks, the one translation of settings into
client options (aiokafka consumers and producers, the Faust app), the fetch-wait patch, and quiet
client logs. Below everything that consumes or produces; imports only ``cluster``.
"""
