"""The GraphQL API: thin resolvers over core services, one folder per area."""
