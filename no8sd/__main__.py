"""Allow `python -m no8sd`."""

from no8sd.cli import main

if __name__ == "__main__":
    main()
