"""``python -m pipeline`` is the ``ethercattle`` command line."""

from pipeline.cli import main

main()
