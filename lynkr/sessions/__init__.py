"""Sessions as a user sees them: the ``lynkr sessions`` listing, retention, and ``lynkr log compact``."""
