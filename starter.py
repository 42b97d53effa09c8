"""`cases`, the command line of officers and auditors (see cli/main.py)."""

from cli.main import main

if __name__ == "__main__":
    main()
