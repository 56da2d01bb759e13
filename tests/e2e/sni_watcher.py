#!/usr/bin/env python3
"""Stands in for the desktop's tray host: a StatusNotifierWatcher (org.kde.StatusNotifierWatcher on
the session bus) that says a host is registered, as a panel with a tray does. Usage:
sni_watcher.py LOG. Prints "ready" once it owns the name; appends one JSON line {"sender": …,
"path": …} to LOG for each RegisterStatusNotifierItem (libayatana-appindicator passes its object
path; the sender is the app's connection)."""

import json
import sys

from jeepney import HeaderFields, MessageType, new_error, new_method_return, new_signal
from jeepney import DBusAddress

from bus_name import own

NAME = "org.kde.StatusNotifierWatcher"
PATH = "/StatusNotifierWatcher"
LOG = sys.argv[1]

conn = own(NAME, "sni_watcher")
items: list[str] = []
properties = lambda: {
    "IsStatusNotifierHostRegistered": ("b", True),
    "ProtocolVersion": ("i", 0),
    "RegisteredStatusNotifierItems": ("as", list(items)),
}
while True:
    msg = conn.receive()
    if msg.header.message_type != MessageType.method_call:
        continue
    member = msg.header.fields.get(HeaderFields.member)
    sender = msg.header.fields.get(HeaderFields.sender)
    if member == "RegisterStatusNotifierItem":
        path = msg.body[0]
        items.append(f"{sender}{path}" if path.startswith("/") else path)
        with open(LOG, "a") as f:
            f.write(json.dumps({"sender": sender, "path": path}) + "\n")
        conn.send(new_method_return(msg))
        conn.send(new_signal(DBusAddress(PATH, interface=NAME), "StatusNotifierItemRegistered", "s", (items[-1],)))
    elif member == "RegisterStatusNotifierHost":
        conn.send(new_method_return(msg))
    elif member == "Get":
        _interface, prop = msg.body
        if prop in properties():
            conn.send(new_method_return(msg, "v", (properties()[prop],)))
        else:
            conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownProperty", "s", (prop,)))
    elif member == "GetAll":
        conn.send(new_method_return(msg, "a{sv}", (properties(),)))
    else:
        conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (f"no method {member}",)))
