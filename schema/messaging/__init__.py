"""Messages to members: consent, templates, sends, the message log."""
