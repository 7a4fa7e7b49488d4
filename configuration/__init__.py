"""The lowest layer every process shares: how settings are read and checked (a TOML file, then
``SHELFCAST_*`` variables, then options), the value types of command-line options, and where
the real data lives. It imports no other package of ours, so training, the gateway, the API and
the hub all build on it without importing each other.
"""
