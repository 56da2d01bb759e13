#!/usr/bin/env python3
"""A scripted stand-in for the system browser (set USPSLINK_BROWSER to run it).

It walks the sandbox's USPS pages as a person would (sign in, MFA code, tick the agreement, Authorize
and Continue or Deny), follows USPS's redirect through the sign-in service's callback page when the
sign-in goes that way, and then hands the final uspslink:// URL to the OS exactly as a browser does:
`gio open URL`, which starts (or forwards to) the registered handler, i.e. the app.

Plan: the file named by USPSLINK_SCRIPT_PLAN holds one line per expected sign-in, used in order:
`authorize`, `authorize-as:<user>` (`merchant2`: another business), `deny`, `wrong-password`, `locked`,
or `ignore` (open the page, do nothing). Every URL the browser was asked to open is appended to
USPSLINK_SCRIPT_LOG.
"""

import html
import os
import pathlib
import re
import subprocess
import sys
import urllib.parse
import urllib.request

PASSWORD = "sandbox-password"
MFA = "123456"


def log(line: str) -> None:
    path = os.environ.get("USPSLINK_SCRIPT_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def next_action() -> str:
    path = os.environ.get("USPSLINK_SCRIPT_PLAN")
    if not path or not pathlib.Path(path).exists():
        return "authorize"
    lines = pathlib.Path(path).read_text().splitlines()
    if not lines:
        return "ignore"
    pathlib.Path(path).write_text("".join(l + "\n" for l in lines[1:]))
    return lines[0].strip()


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def post(base: str, path: str, fields: dict) -> str:
    data = urllib.parse.urlencode(fields).encode()
    with urllib.request.urlopen(base + path, data=data, timeout=10) as r:
        return r.read().decode()


def href(page: str, element_id: str) -> str:
    m = re.search(r'id="%s" href="([^"]+)"' % re.escape(element_id), page)
    if not m:
        raise SystemExit(f"scripted browser: no #{element_id} on the page:\n{page}")
    return html.unescape(m.group(1))


def hand_to_os(url: str) -> None:
    if url.startswith("http"):
        # USPS sent the browser to the sign-in service's callback (the default way): load its page
        # and follow it on to the app, as a browser does with its redirect.
        log(f"service {url.split('?')[0]}")
        page = get(url)
        refresh = re.search(r'http-equiv="refresh" content="0; url=([^"]+)"', page)
        url = href(page, "open-app")
        if not refresh or html.unescape(refresh.group(1)) != url:
            raise SystemExit(f"scripted browser: the service page does not redirect to {url}:\n{page}")
    log(f"handoff {url}")
    subprocess.run(["gio", "open", url], check=True, timeout=20)


def main() -> None:
    url = sys.argv[-1]
    log(f"open {url}")
    if "/cop-navigator" not in url:
        return  # e.g. the Business Portal page: a person would read it
    action = next_action()
    log(f"action {action}")
    if action == "ignore":
        return
    base = url.split("/cop-navigator")[0]
    page = get(url)
    flow = re.search(r'name="flow" value="([^"]+)"', page).group(1)
    # `authorize-as:<user>` signs in as another sandbox user (`merchant2`: another business).
    user = action.split(":", 1)[1] if action.startswith("authorize-as:") else "locked" if action == "locked" else "merchant"
    password = "wrong" if action == "wrong-password" else PASSWORD
    page = post(base, "/cop-navigator/sign-in", {"flow": flow, "username": user, "password": password})
    if action == "wrong-password":
        return hand_to_os(href(page, "give-up"))
    if action == "locked":
        return hand_to_os(href(page, "return"))
    page = post(base, "/cop-navigator/mfa", {"flow": flow, "code": MFA})
    decision = "deny" if action == "deny" else "authorize"
    page = post(base, "/cop-navigator/grant", {"flow": flow, "agree": "yes", "decision": decision})
    hand_to_os(href(page, "return" if decision == "deny" else "go"))


if __name__ == "__main__":
    main()
