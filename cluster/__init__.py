"""What every process of a cluster shares: its settings, its topic names, and the CDC record codec.

The ground floor: it imports nothing else of the project.
"""
