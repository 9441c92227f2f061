"""Faust tables of a replica worker, built by the composition root (``pipeline.worker``)."""
