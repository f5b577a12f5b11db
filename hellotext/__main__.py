"""``python -m hellotext``: the CLI."""

from hellotext.cli import main

main()
