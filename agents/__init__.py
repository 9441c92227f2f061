"""Faust agents and timers of a replica worker, registered by the composition root (``pipeline.worker``)."""
