"""ClientApp: answer with this SuperNode's partition id."""

from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

app = ClientApp()


@app.query()
def query(msg: Message, context: Context) -> Message:
    pid = int(context.node_config["partition-id"])
    return Message(RecordDict({"cfg": ConfigRecord({"partition-id": pid})}), reply_to=msg)
