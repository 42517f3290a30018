"""The web Client Panel and operator console: server-rendered pages over auth and tickets."""
