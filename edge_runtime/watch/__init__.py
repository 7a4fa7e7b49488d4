"""Loss watchers: shrink and theft, shelf weights, cycle counts, phantom stock, and the anomaly
model's scores that feed them.
"""
