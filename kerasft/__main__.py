"""`python -m kerasft` is the `kerasft` command."""

from kerasft.cli import main

main()
