"""lynkr's own tools: the registry, the policy engine, and the tool implementations.

One path for every tool call (:func:`lynkr.tools.runner.run_call`): resolve the name (aliases included),
validate the input against the tool's JSON schema, turn it into canonical actions, let every policy rule judge
every action, run, cut the output, mask secrets, describe the call as events.

===================  ================================================================================
``base.py``          the interface: ``Action``, ``ToolSpec``, ``ToolResult``, ``ToolContext``, ``Tool``,
                     ``PolicyRule``, ``Projection``, ``Registry``
``runner.py``        ``Toolbox`` and ``run_call``: the one way a tool runs
``toolbox.py``       ``build_toolbox``: the built-in modules, then ``lynkr.tools`` / ``lynkr.policies`` plugins
``events.py``        ``tool.ran``, ``tool.refused``, ``tool.file_written``
``policy.py``        built-in rules: disallowed tools (by the action kinds they produce), file paths, shell
                     commands, network addresses
``cmdline.py``       sans-IO reading of a shell line into every command it would run, and its git actions
``workspace.py``     resolving paths (symlinks followed) and the path patterns of the file policy
``environ.py``       the scrubbed environment of every tool subprocess
``shell.py``         ``shell``, and running a command in its own process group with bounded output
``files.py``         ``fs_read``, ``fs_write``, ``edit_patch``, ``workspace_list``/``_search``, edit history/revert
``cli_builtins.py``  Claude Code's ``Bash``, ``Read``, ``Write``, ``Edit``, ``NotebookEdit``, under their own
                     names, with the CLI's input and result shapes
``cli_search.py``    Claude Code's ``Glob`` and ``Grep``
``cli_web.py``       Claude Code's ``WebFetch``: public addresses only, every redirect judged again
``edits.py``         every write as an event with the bytes before it; the ``edits`` projection
``patch.py``         sans-IO unified diffs: parse, apply all-or-nothing
``walk.py``          walking the workspace with ``.gitignore`` honoured and blocked paths hidden
``text.py``          reading files as text, with clear errors for binary, huge and non-UTF-8 files
===================  ================================================================================
"""
