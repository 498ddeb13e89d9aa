"""Brand: page templates, store pages, the resolved store page."""
