"""A simulated AT modem: one engine, served on a pty or as ``simmodem://``.

Importing this package is cheap (pyserial imports it to find the URL handler
``protocol_simmodem``); the engine and its card are loaded on use.
"""
