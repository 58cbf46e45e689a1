"""fourdhands: an open implementation of 4DHands (interacting hands in 4D from monocular input)."""

__version__ = "0.1.0"
