"""``python -m mlcdk.cli``: the same as the ``mlcdk`` console script."""

from mlcdk.cli import main

main()
