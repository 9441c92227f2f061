"""The composed product: the replica worker's Faust app, the master process, and the command line.

``faust -A pipeline worker`` looks up ``pipeline.app``; it is built on first
access from the environment's settings (``pipeline.worker.create_app``), so
importing anything of this package (or the CLI) needs no configured environment.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from cluster.settings import load_settings
        from pipeline.worker import create_app

        app = create_app(load_settings())
        globals()["app"] = app
        return app
    raise AttributeError(name)
