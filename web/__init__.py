"""The HTTP glue around the GraphQL schema: the middlewares, the GraphQL view and the plain endpoints app.py mounts."""
