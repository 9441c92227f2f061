"""Where a process's memory goes, for the soak benchmark (a diagnostic, never in production).

``bench/soak.py`` puts this folder first on the replica's ``PYTHONPATH``, so Python imports
this module at start-up. When ``SOAK_HEAP_DIR`` is set, a daemon thread appends to
``heap.jsonl`` there, every ``SOAK_HEAP_EVERY`` seconds, what glibc's allocator holds
(``mallinfo2``: bytes in use by C code and Python's large objects, bytes freed but kept, bytes
mapped) and Python's allocated block count; with ``SOAK_TRACEMALLOC=1`` it also traces the
Python heap and dumps a ``tracemalloc`` snapshot each time (``heap-<seconds>.snapshot``), which
the benchmark compares to attribute growth to the lines that allocated it (and which slows the
replica). Nothing in the replica knows about it.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _mallinfo() -> dict[str, int]:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    info = libc.mallinfo2()
    return {"malloc_in_use": info.uordblks + info.hblkhd, "malloc_free_kept": info.fordblks, "malloc_mapped": info.hblkhd}


def _look(folder: Path, started: float, trace: bool) -> None:
    elapsed = time.monotonic() - started
    line = {"at": elapsed, **_mallinfo(), "python_blocks": sys.getallocatedblocks()}
    if trace:
        line["python_traced"] = tracemalloc.get_traced_memory()[0]
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        partial = folder / f".heap-{elapsed:07.0f}.partial"
        snapshot.dump(str(partial))
        partial.rename(folder / f"heap-{elapsed:07.0f}.snapshot")
    with (folder / "heap.jsonl").open("a") as out:
        out.write(json.dumps(line) + "\n")


def _watch(folder: Path, every: float, trace: bool) -> None:
    started = time.monotonic()
    while True:
        time.sleep(every)
        _look(folder, started, trace)


def _start() -> None:
    folder = os.environ.get("SOAK_HEAP_DIR")
    if not folder:
        return
    trace = os.environ.get("SOAK_TRACEMALLOC") == "1"
    if trace:
        tracemalloc.start()
    every = float(os.environ.get("SOAK_HEAP_EVERY", "60"))
    threading.Thread(target=_watch, args=(Path(folder), every, trace), name="soak-heap", daemon=True).start()


_start()
