#!/usr/bin/env python3
"""Stands in for the desktop's notification server (the Desktop Notifications Specification's
org.freedesktop.Notifications on the session bus), so a test can see which notifications the app
asked for. Usage: notification_server.py LOG [--click SUMMARY]. Prints "ready" once it owns the name;
appends one JSON line {"summary": …, "body": …, "app_name": …, "actions": […]} to LOG for each Notify
call. With --click, a notification of that summary is clicked a second after it arrives, as a person
does: the server emits ActionInvoked(id, "default"), which the app hears on the session bus."""

import json
import sys
import threading
import time

from jeepney import DBusAddress, HeaderFields, MessageType, new_error, new_method_return, new_signal

from bus_name import own

NAME = "org.freedesktop.Notifications"
LOG = sys.argv[1]
CLICK = sys.argv[sys.argv.index("--click") + 1] if "--click" in sys.argv else None

conn = own(NAME, "notification_server")
next_id = 1
while True:
    msg = conn.receive()
    if msg.header.message_type != MessageType.method_call:
        continue
    member = msg.header.fields.get(HeaderFields.member)
    if member == "Notify":
        app_name, _replaces, _icon, summary, body, actions = msg.body[:6]
        with open(LOG, "a") as f:
            f.write(json.dumps({"app_name": app_name, "summary": summary, "body": body, "actions": list(actions)}) + "\n")
        conn.send(new_method_return(msg, "u", (next_id,)))
        if CLICK is not None and summary == CLICK and "default" in actions:
            def click(server_id=next_id):
                time.sleep(1)
                signal = new_signal(DBusAddress("/org/freedesktop/Notifications", interface=NAME), "ActionInvoked", "us",
                                    (server_id, "default"))
                conn.send(signal)
            threading.Thread(target=click, daemon=True).start()
        next_id += 1
    elif member == "GetServerInformation":
        conn.send(new_method_return(msg, "ssss", ("uspslink-test", "uspslink", "1", "1.2")))
    elif member == "GetCapabilities":
        conn.send(new_method_return(msg, "as", (["body"],)))
    elif member == "CloseNotification":
        conn.send(new_method_return(msg))
    else:
        conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (f"no method {member}",)))
