#!/usr/bin/env python3
"""Stands in for a uspslink that is in the middle of closing: it owns the single-instance D-Bus name,
and when a new launch hands it its arguments it goes away without answering, as an exiting app does
(its connection closes before it handles the call). Usage: closing_instance.py NAME MARKER. Prints
"ready" once it owns NAME; writes "forwarded" to the file MARKER when a launch reached it."""

import os
import sys

from jeepney import HeaderFields, MessageType

from bus_name import own

NAME, MARKER = sys.argv[1], sys.argv[2]

conn = own(NAME, "closing_instance")
while True:
    msg = conn.receive()
    if msg.header.message_type == MessageType.method_call and msg.header.fields.get(HeaderFields.member) == "ExecuteCallback":
        with open(MARKER, "w") as f:
            f.write("forwarded\n")
        os._exit(0)  # no reply: the caller sees "recipient disconnected"
