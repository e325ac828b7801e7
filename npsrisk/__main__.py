"""`python -m npsrisk`: the CLI as a file, for launchers that need a .py path (spark-submit)."""

from npsrisk.cli import main

if __name__ == "__main__":
    main()
