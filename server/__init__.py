"""agentsdk_server: the PolicyServer behind ``agentsdk serve``.

Two kinds of process, one subpackage each:

    front/     the HTTP front: routes, validation, the training inbox, remote
               inference. Never imports Ray or torch.
    trainer/   the trainer: RLlib, the input reader EnvRunner, ONNX export.
               The only code that imports Ray or torch.

Between them ``link`` (a pipe carrying msgpack), which takes callables and
imports neither side. ``serve`` starts both and stops both; ``config`` holds
every option and its default; ``algorithms`` what each algorithm needs from
the data. The protocol itself is ``agentsdk_client.protocol``.
"""

__version__ = "0.1.0"  # the agentsdk distribution; announced as server_version in GET /v1/info
