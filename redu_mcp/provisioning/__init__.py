"""Provisioning: the decisions behind the tools, with no MCP and no prose.

Create with reconciliation (``create``), confirmed-elsewhere delete (``delete``), shared waiting
(``waiting``) and credential files (``credentials``). Each operation returns a typed outcome; the MCP
face (``redu_mcp.server``) turns outcomes into results and words.
"""
