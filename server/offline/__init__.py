"""Offline RL on what apps recorded: train (BC, MARWIL, CQL), evaluate, warm-start online training.

``agentsdk serve --record DIR`` (``front/recorder.py``) and the client's log-only
``Recorder`` write *recordings* (``recording.py``: RLlib's offline column format
plus a file naming the spaces). ``agentsdk train --offline`` (``train.py``) and
``agentsdk evaluate --offline`` (``evaluate.py``) run in the CLI's own process;
``agentsdk serve --init-from`` (``warm_start.py``) runs in the trainer process.

Importing this package imports nothing heavy: the front imports ``recording``,
which needs only pyarrow; the other modules import Ray and torch.
"""
