"""The prompt cache: its key (sans-IO), its LRU state as a pure fold, its events and settings."""
