"""The transport's read offsets: Faust may not drop messages of a topic whose position the app owns."""

from faust.types import TP

from broker.transport import ReadOffsets


def test_read_offsets_are_not_kept_for_topics_without_acks() -> None:
    offsets = ReadOffsets(lambda topic: topic == "acked")
    offsets[TP("acked", 0)] = 41
    offsets[TP("cdc", 0)] = 41  # Faust raises the mark as it delivers: ignored
    assert offsets[TP("acked", 0)] == 41
    assert offsets[TP("cdc", 0)] is None  # so a refetch after a seek backwards is never dropped
    assert offsets[TP("acked", 1)] is None
    offsets.pop(TP("acked", 0), None)
    assert offsets[TP("acked", 0)] is None
