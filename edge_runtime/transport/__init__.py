"""How messages leave and enter the gateway: MQTT (with the shipped Mosquitto settings), the
uplink of stock deltas, and the JetStream uplink to the hub.
"""
