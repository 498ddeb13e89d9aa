"""GraphQL-facing functions: turn arguments and the viewer into calls to services/."""
