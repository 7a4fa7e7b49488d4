"""The central hub: JetStream consumers, the network stock view, omnichannel availability and
reservations, and fleet health (docs/hub.md)."""
