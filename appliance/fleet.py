"""A fleet of boxes on one network behind one address: the boxes that `appliance discover`
finds become an nginx upstream (least connections; a box that answers 503 or fails hands
the request to the next), so a gallery with several boxes shares its load."""

from __future__ import annotations

from appliance.discovery import Box

TEMPLATE = """# Made by `appliance fleet` from the boxes found on the network ({count}).
upstream appliance_fleet {{
    least_conn;
{servers}
}}

server {{
    listen {listen};
    client_max_body_size {body_mb}m;
    location / {{
        proxy_pass http://appliance_fleet;
        proxy_next_upstream error timeout http_503;
        proxy_set_header Host $http_host;  # with the port: the box compares it with Origin
        proxy_read_timeout 60s;
        proxy_buffering off;  # Server-Sent Events for /kiosk pass straight through
    }}
}}
"""


def nginx_config(boxes: list[Box], listen: str = "8080", body_mb: int = 20) -> str:
    """The nginx `upstream` and `server` blocks for `boxes`. Raises ValueError when empty."""
    if not boxes:
        raise ValueError("no boxes to put behind nginx: is discovery on, on the same network?")
    servers = "\n".join(f"    server {b.address}:{b.port} max_fails=2 fail_timeout=10s;"
                        f"  # {b.name}" for b in boxes)
    return TEMPLATE.format(count=len(boxes), servers=servers, listen=listen, body_mb=body_mb)
