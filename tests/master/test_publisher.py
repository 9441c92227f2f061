"""The publisher notices a broker that lost the log by the offsets it acknowledges."""

from pathlib import Path

import pytest

from master.publisher import LogLost, Publisher
from cluster.settings import Settings
from storage.leveldb import LevelDB


def publisher(tmp_path: Path, db: LevelDB) -> Publisher:
    settings = Settings(broker="kafka://127.0.0.1:1", cluster="main", datadir=tmp_path, secret="a-cluster-secret-0123")
    return Publisher(settings, db, lambda: (0, 0, b"\0" * 32))


async def test_increasing_acknowledged_offsets_are_one_log(tmp_path: Path) -> None:
    with LevelDB(tmp_path / "chaindb") as db:
        follower = publisher(tmp_path, db)
        for offset in (0, 1, 5):
            follower._acknowledged(offset)
        assert follower.last_offset == 5


async def test_an_acknowledged_offset_at_or_before_the_last_is_a_lost_log(tmp_path: Path) -> None:
    with LevelDB(tmp_path / "chaindb") as db:
        follower = publisher(tmp_path, db)
        follower._acknowledged(81)
        with pytest.raises(LogLost, match="acknowledged offset 0 after offset 81"):
            follower._acknowledged(0)
