"""`python -m engramdb.cli`: the `engramdb` script."""

from engramdb.cli import main

main()
