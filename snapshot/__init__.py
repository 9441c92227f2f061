"""Snapshots of a node's chain database: create, verify, restore, keep on a schedule.

A snapshot is a consistent copy of ``DATADIR/chaindb`` taken through a LevelDB
snapshot (a point-in-time view), so a running replica keeps applying and
serving while it is written. It holds the replica's position (next Kafka
offset, last sequence number, the last message's authenticator) in the same
database, and a manifest that names the cluster and carries a checksum over
the manifest and every file. New replicas restore the newest snapshot and
catch up from its offset.

Modules: ``manifest`` (the format and its errors), ``archive`` (the two
layouts, read and written with every byte checked), ``create`` (write one from
a database), ``restore`` (verify and lay one down), ``store`` (a directory of
snapshots: newest, prune), ``logpos`` (what the Kafka log says: retention, the
master's offset), ``remote`` (ask a running replica for one, signed),
``service`` (snapshots inside a running replica: jobs, the timer's step, the
status for metrics), ``commands`` and ``cluster`` (the CLI: ``snapshot ...``,
``cluster init``, ``cluster wait``), ``progress`` (a stderr progress line).
"""
