"""NBD: the Network Block Device protocol, server and client."""
