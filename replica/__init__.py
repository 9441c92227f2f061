"""The replica's own logic, free of Faust: applying the log, resuming, and its live state."""
