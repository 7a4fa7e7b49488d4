"""``python -m edge_runtime.messages [PAGE]``: print the consumer documentation, or rewrite the
generated section of PAGE (docs/messages.md) with it."""

import sys

from edge_runtime.messages.consumer_docs import consumer_docs, write_docs

if len(sys.argv) > 1:
    write_docs(sys.argv[1])
else:
    print(consumer_docs(), end="")
