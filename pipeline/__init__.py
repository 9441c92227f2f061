"""The ethercattle pipeline: settings, topics, the CDC record codec and the Faust app.

``faust -A pipeline worker`` looks up ``pipeline.app``; it is built on first
access so that importing the codec or the settings never needs a configured
environment.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from pipeline.worker import app

        return app
    raise AttributeError(name)
