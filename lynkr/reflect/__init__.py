"""The reflector's sans-IO parts: what a finished task shows (``analysis``), skills as a fold (``skills``), their
injection into later requests (``inject``), their events and settings, and ``lynkr skills``."""
