#!/usr/bin/env python3
"""Stands in for the desktop's notification server (the Desktop Notifications Specification's
org.freedesktop.Notifications on the session bus), so a test can see which notifications the app
asked for. Usage: notification_server.py LOG. Prints "ready" once it owns the name; appends one JSON
line {"summary": …, "body": …, "app_name": …} to LOG for each Notify call."""

import json
import sys

from jeepney import HeaderFields, MessageType, new_error, new_method_return

from bus_name import own

NAME = "org.freedesktop.Notifications"
LOG = sys.argv[1]

conn = own(NAME, "notification_server")
next_id = 1
while True:
    msg = conn.receive()
    if msg.header.message_type != MessageType.method_call:
        continue
    member = msg.header.fields.get(HeaderFields.member)
    if member == "Notify":
        app_name, _replaces, _icon, summary, body = msg.body[:5]
        with open(LOG, "a") as f:
            f.write(json.dumps({"app_name": app_name, "summary": summary, "body": body}) + "\n")
        conn.send(new_method_return(msg, "u", (next_id,)))
        next_id += 1
    elif member == "GetServerInformation":
        conn.send(new_method_return(msg, "ssss", ("uspslink-test", "uspslink", "1", "1.2")))
    elif member == "GetCapabilities":
        conn.send(new_method_return(msg, "as", (["body"],)))
    elif member == "CloseNotification":
        conn.send(new_method_return(msg))
    else:
        conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (f"no method {member}",)))
