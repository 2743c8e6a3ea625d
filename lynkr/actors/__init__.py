"""Actors: trio tasks that own their state and talk to each other only through bounded channels."""
