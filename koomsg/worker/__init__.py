"""Outer code that runs work off the request path: dramatiq actors, periodic jobs, process services.

``actors`` declares the actor decorator and the per-process worker runtime,
``broker`` the one broker set-up, ``periodic`` the periodic-job registry,
``jobs`` one module per area (thin wrappers over core functions) and
``services`` what a process runs beside the API. Core never imports this package.
"""
