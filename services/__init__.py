"""Domain rules with no GraphQL in them."""
