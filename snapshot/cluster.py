"""From nothing to a cluster replicas can start from: ``ethercattle cluster init`` and ``cluster wait``.

``init`` runs the one-shot steps in order, each with its progress on stderr:

1. create the cluster's topics with their partition counts (the CDC log: one);
2. initialize the master's database through its capture, so every write is
   on the log: a go-ethereum genesis + chain import, or the dev chain's genesis
   (or keep a database that is already there);
3. wait until the broker has acknowledged every record;
4. snapshot the (now stopped) master into the snapshot directory, its position
   located in the log;
5. restore that snapshot into each replica datadir given.

Long-running processes (master, replicas, emitter) are then started by the
caller: ``deploy/init-cluster.sh`` locally, compose or Kubernetes elsewhere.
``wait`` follows one replica's catch-up until it reports ready.
"""

from __future__ import annotations

import asyncio
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.errors import ChainError
from cluster import boundedjson
from cluster.settings import Settings
from snapshot.commands import snapshot_local
from snapshot.manifest import Manifest, SnapshotError
from snapshot.progress import Progress
from snapshot.restore import restore_snapshot
from snapshot.store import newest, snapshot_name

def _say(step: int, text: str) -> None:
    print(f"[{step}/5] {text}", flush=True)


@dataclass(frozen=True)
class InitPlan:
    snapshot_dir: Path
    fmt: str = "tar.gz"
    genesis: Path | None = None
    chain: Path | None = None
    dev: bool = False
    chain_id: int = 1337
    replica_datadirs: tuple[Path, ...] = ()


async def _initialize_master(settings: Settings, plan: InitPlan) -> int:
    """Write the chain through the master's capture; the last sequence number once the broker acknowledged it all."""
    from master.node import MasterNode

    async with MasterNode(settings) as node:
        assert node.db is not None and node.publisher is not None
        if plan.genesis is not None and plan.chain is not None:
            from chain.importer import ImportProgress, import_chain

            bar = Progress("import", unit="blocks")

            def progress(step: ImportProgress) -> None:
                bar.update(step.imported + step.skipped, step.total, detail=f"block {step.number}")

            result = await asyncio.to_thread(import_chain, node.db, plan.genesis, plan.chain, progress)
            bar.close()
            print(f"      imported {result.imported} blocks ({result.skipped} present already), head {result.head_number} "
                  f"0x{bytes(result.head_hash).hex()}", flush=True)
        elif plan.dev:
            from chain.dev import init_dev_chain

            chain = await asyncio.to_thread(init_dev_chain, node.db, plan.chain_id)
            head = chain.get_canonical_head()
            print(f"      dev chain {plan.chain_id}: head {head.block_number} 0x{bytes(head.hash).hex()}", flush=True)
        else:
            print("      keeping the master database as it is", flush=True)
        _say(3, f"waiting for the broker to acknowledge records up to {node.db.sequence}")
        bar = Progress("publish", unit="records")
        flushing = asyncio.create_task(node.flush())
        while not flushing.done():
            bar.update(node.publisher.published, node.db.sequence)
            await asyncio.wait([flushing], timeout=0.2)
        await flushing
        bar.update(node.publisher.published, node.db.sequence)
        bar.close()
        return node.db.sequence


def init_cluster(settings: Settings, plan: InitPlan) -> int:
    from broker.admin import ensure_topics

    try:
        _say(1, f"topics of cluster {settings.cluster} on {settings.broker}")
        created = asyncio.run(asyncio.wait_for(ensure_topics(settings), timeout=30))
        print("      created: " + (", ".join(created) if created else "nothing (all topics exist)"), flush=True)

        existing = newest(plan.snapshot_dir, settings.cluster)
        if existing is not None:
            final, manifest = existing.path, existing.manifest
            _say(2, f"already initialized: {final} holds the cluster's snapshot at record {manifest.sequence}")
            _say(3, "nothing to publish")
            _say(4, "keeping the existing snapshot (a new one comes from a replica: ethercattle snapshot create --url)")
        else:
            _say(2, f"master database at {settings.chaindb}")
            sequence = asyncio.run(_initialize_master(settings, plan))
            if sequence == 0:
                raise SnapshotError("the master's database is empty: pass --genesis/--chain or --dev")
            final, manifest = _snapshot_master(settings, plan, sequence)

        _say(5, f"restoring into {len(plan.replica_datadirs)} replica datadir(s)")
        for datadir in plan.replica_datadirs:
            restored = asyncio.run(restore_snapshot(settings.model_copy(update={"datadir": datadir}), final,
                                                    keep_existing=True, progress=Progress("restore")))
            kept = " (it held a database already: kept)" if restored.skipped else ""
            print(f"      {restored.chaindb}: ready to start at offset {manifest.next_offset}{kept}", flush=True)
    except (SnapshotError, ChainError) as exc:
        print(f"ethercattle cluster init: {exc}", file=sys.stderr)
        return 1
    except asyncio.TimeoutError:
        print(f"ethercattle cluster init: the broker at {settings.broker} did not answer", file=sys.stderr)
        return 1
    print("cluster initialized. Start the master (ethercattle master ...) and each replica "
          "(ETHERCATTLE_DATADIR=... ETHERCATTLE_REPLICA_ID=... faust -A pipeline worker --web-port PORT).")
    return 0


def _snapshot_master(settings: Settings, plan: InitPlan, sequence: int) -> tuple[Path, Manifest]:
    plan.snapshot_dir.mkdir(parents=True, exist_ok=True)
    _say(4, f"snapshot of the master at record {sequence} into {plan.snapshot_dir}")
    staging = plan.snapshot_dir / f".init-{int(time.time())}{'.tar.gz' if plan.fmt == 'tar.gz' else ''}"
    manifest = snapshot_local(settings, staging, plan.fmt)
    final = plan.snapshot_dir / snapshot_name(settings.cluster, manifest.next_offset, manifest.sequence, settings.master_id, plan.fmt)
    staging.rename(final)
    print(f"      {final}: {manifest.summary()}", flush=True)
    return final, manifest


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, boundedjson.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            return error.code, boundedjson.loads(error.read() or b"null")
        except ValueError:
            return error.code, None
    except (urllib.error.URLError, OSError, ValueError):
        return 0, None


def wait_ready(url: str, timeout: float, interval: float = 0.5) -> int:
    """Follow a replica's catch-up (offsets applied of the log's end) until ``/readyz`` answers 200."""
    base = url.rstrip("/")
    bar = Progress("catch-up", unit="messages")
    deadline = time.monotonic() + timeout
    first: int | None = None
    body: Any = None
    try:
        while time.monotonic() < deadline:
            status, body = _get(base + "/readyz")
            if isinstance(body, dict):
                offset, end = body.get("next_offset"), body.get("log_end")
                if offset is not None:
                    first = offset if first is None else first
                    total = None if end is None or end <= first else max(end, offset) - first
                    bar.update(offset - first, total, detail=f"offset {offset} of {end}, record {body.get('sequence')}")
                if body.get("halted"):
                    print(f"\nethercattle cluster wait: the replica halted: {body['halted']}", file=sys.stderr)
                    return 1
            if status == 200:
                return 0
            time.sleep(interval)
    finally:
        bar.close()
    failed = [check for check in (body or {}).get("checks", []) if not check.get("ok")] if isinstance(body, dict) else []
    reasons = "; ".join(f"{c['name']}={c.get('value')} {c.get('detail', '')}".strip() for c in failed) or "no answer"
    print(f"ethercattle cluster wait: {base} not ready after {timeout}s: {reasons}", file=sys.stderr)
    return 1
