"""The Model Context Protocol, both ways.

- Client side: the MCP servers the user configures (:mod:`lynkr.mcp.manifest`) are started and supervised by the
  bridge actor (:mod:`lynkr.actors.mcp`), and their tools become lynkr tools (:mod:`lynkr.mcp.tools`), named
  ``mcp__<server>__<tool>`` (:mod:`lynkr.mcp.names`), with results mapped to ``tool_result`` content
  (:mod:`lynkr.mcp.results`).
- Server side: lynkr serves its own tools at ``/mcp`` (:mod:`lynkr.mcp.endpoint`).
"""
