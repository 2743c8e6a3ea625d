"""Repo intelligence: a tree-sitter index of the workspace, kept current while files change.

``languages`` and ``extract`` are sans-IO (bytes in, facts out); ``discover`` walks the workspace; ``store``
keeps the derived facts in their own LMDB environment; ``symbols`` answers queries from memory; ``repomap``
ranks definitions; ``project`` reads manifests; ``claude_md`` writes the generated guide.
"""
