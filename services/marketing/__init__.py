"""Marketing."""
