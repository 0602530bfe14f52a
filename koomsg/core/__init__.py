"""The domain of koomsg: one package per area, plain async services over a session."""
