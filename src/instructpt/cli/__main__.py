"""`python -m instructpt.cli`: the same as the `instructpt` command."""

from instructpt.cli import main

main()
