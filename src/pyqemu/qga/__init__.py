"""pyqemu-ga: the guest agent.

A daemon that runs inside a guest and answers the host's QGA requests (the
QMP wire format without the greeting) over a unix socket, a virtio-serial
port, an ISA serial port or vsock.  The modules:

* ``qjson``     -- QEMU's JSON dialect: streaming lexer, parser and writer
* ``qapi``      -- argument checking with QAPI's error messages
* ``dispatch``  -- the command registry, blocking and the request/response cycle
* ``commands/`` -- the commands, one module per group
* ``channel``   -- transports and the main loop
* ``config``    -- command line and key-file configuration
"""
