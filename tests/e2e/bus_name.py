"""Owning a well-known name on the session bus, for the stand-in D-Bus peers the tests start
(closing_instance.py, notification_server.py)."""

import sys

from jeepney.bus_messages import message_bus
from jeepney.io.blocking import DBusConnection, open_dbus_connection

DO_NOT_QUEUE = 4
PRIMARY_OWNER = 1


def own(name: str, who: str) -> DBusConnection:
    """A session-bus connection that owns `name`, or exit naming `who`; prints "ready" once owned."""
    conn = open_dbus_connection(bus="SESSION")
    owned = conn.send_and_get_reply(message_bus.RequestName(name, DO_NOT_QUEUE)).body[0]
    if owned != PRIMARY_OWNER:
        sys.exit(f"{who}: could not own {name} (reply {owned})")
    print("ready", flush=True)
    return conn
