"""``python -m agentflux``: the command line, as the ``agentflux`` script runs it."""

from agentflux.cli import main

main()
