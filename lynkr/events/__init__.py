"""The event log: versioned records, their binary codec, the LMDB store and pure projections."""
