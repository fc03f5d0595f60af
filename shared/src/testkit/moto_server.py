"""moto_server with each DynamoDB request applied atomically.

Real DynamoDB evaluates a conditional write and applies it as one step; moto checks the
condition and then writes without a lock, so on its threaded server two concurrent
conditional updates of one item can both pass: a lost update no real table allows, which
made the store's concurrency test fail now and then. DynamoDB requests are serialised
here; every other service keeps moto's threaded server.
"""

import sys
import threading

from moto import server

_dynamodb = threading.Lock()
_dispatch = server.DomainDispatcherApplication.__call__


def _call(self, environ, start_response):
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
        with _dynamodb:
            # The whole response is produced inside the lock.
            return list(_dispatch(self, environ, start_response))
    return _dispatch(self, environ, start_response)


server.DomainDispatcherApplication.__call__ = _call

if __name__ == "__main__":
    server.main(sys.argv[1:])
