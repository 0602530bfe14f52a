"""Imports every module that declares actors or periodic jobs, so a process has them all."""
