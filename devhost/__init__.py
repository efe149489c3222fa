"""Local development tools: a stand-in for the Functions host, and the one-command runner.

A development tool only: never deployed (see .funcignore), never used in Azure.
"""
