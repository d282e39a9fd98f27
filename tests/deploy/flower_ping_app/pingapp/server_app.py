"""ServerApp: wait for the SuperNodes, ping each once, fail on request."""

import time

from flwr.app import ConfigRecord, Context, RecordDict
from flwr.serverapp import Grid, ServerApp

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    if context.run_config["fail"]:
        raise RuntimeError("ping app asked to fail")
    expected = int(context.run_config["expected-nodes"])
    while len(list(grid.get_node_ids())) < expected:
        time.sleep(0.2)
    messages = [
        grid.create_message(RecordDict({"cfg": ConfigRecord({"x": 1})}), "query", node, "1")
        for node in grid.get_node_ids()
    ]
    replies = list(grid.send_and_receive(messages, timeout=60))
    pids = sorted(int(r.content["cfg"]["partition-id"]) for r in replies if r.has_content())
    print("PING_REPLIES", pids, flush=True)
