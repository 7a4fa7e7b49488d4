"""The state file and the only SQL against it: the event log and its id index, the stock
ledger and its rules, the outbox, open orders, schema migrations, archiving, retention, and how
store failures and the single-writer lock are handled.
"""
