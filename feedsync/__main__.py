"""`python -m feedsync` runs the command line."""

from feedsync.cli import main

if __name__ == "__main__":
    main()
