"""The sample function: greets whoever calls it, over HTTP (API Gateway payload 2.0) or on a schedule."""

import json
import os


def handler(event, context):
    body = event.get("body") or ""
    name = "world"
    if body:
        try:
            name = json.loads(body).get("name", name)
        except (ValueError, AttributeError):
            name = body
    print(f"hello called with {len(body)} bytes, LOG_LEVEL={os.environ.get('LOG_LEVEL')}")
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"message": f"hello, {name}"}),
    }
