"""What worker.py and starter.py share: connecting to Temporal, logging."""
