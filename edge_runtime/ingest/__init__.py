"""What the gateway accepts and what it does with refused input: the JSON schema of an edge
event (from the parser's own rules) and the dead-letter messages for rejected events.
"""
