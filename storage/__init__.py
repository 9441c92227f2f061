"""Storage: the LevelDB backend py-evm runs on, its read-only view, and the bookkeeping key schema."""
