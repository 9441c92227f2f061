"""The master: change data capture over its chain database, the journal, and the publisher."""
