"""Messages members agreed to: consent per topic, HQ's templates and sends, triggered messages, and the sending job
that passes them to a provider (WeChat subscribe messages in production, a sandbox elsewhere)."""
