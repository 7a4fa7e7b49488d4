"""The digital twin: a simulated store that replays real demand through the gateway's own
forecast and decision objects (``store``, ``simulate``, ``policies``, ``gateway_engine``), and
the replay and sensor simulators that turn real sales into the gateway's event streams
(``replay``, ``sensors``). It imports the gateway and training; nothing there imports it."""
