"""`python -m fpi.cli`: the same as the `fpi` command."""
from fpi.cli import main

main()
