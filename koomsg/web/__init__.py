"""The HTTP face of koomsg: the starlette app, GraphQL endpoint and GraphiQL,
tracking and unsubscribe endpoints, recipient downloads, and the demo set-up.

Web code reaches core through the schema and core's services, never the worker.
"""
