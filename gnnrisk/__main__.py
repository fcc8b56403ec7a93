"""`python -m gnnrisk` runs the Hydra application, same as `gnnrisk-run`."""

from gnnrisk.app import main

if __name__ == "__main__":
    main()
