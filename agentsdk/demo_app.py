"""A stand-in for a game: a gymnasium env (CartPole-v1 unless told) driven through PolicyClient.

This is the app side of `agentsdk demo`: it imports the client and gymnasium,
never Ray or torch. Run one by hand against a server with
    python -m agentsdk.demo_app --address http://127.0.0.1:9900 --mode local
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

import gymnasium as gym

from agentsdk_client import AgentsdkError, PolicyClient


def play(
    address: str,
    mode: str,
    seed: int,
    max_steps: int | None,
    token: str | None,
    stop: threading.Event,
    pace: bool = True,
    env_id: str = "CartPole-v1",
) -> tuple[int, int, int, int]:
    """Play until stopped; returns steps of finished episodes, acknowledged, dropped, undelivered.

    Undelivered: steps of finished episodes still in the client's queue when it gave up
    waiting (the server was away or full; a client with a ``spool_dir`` would keep them).
    """
    env = gym.make(env_id)
    steps = 0
    client = PolicyClient(address, inference_mode=mode, update_interval=0.5, token=token)
    try:
        obs, _ = env.reset(seed=seed)
        while not stop.is_set() and (max_steps is None or steps < max_steps):
            # A simulator may run faster than the learner; when the server's inbox is
            # full, pausing (rather than playing on) leaves the CPU to the learner and
            # keeps the data fresh. A game that must not pause would skip this.
            if pace and not client.server_accepting:
                client.wait_for_server(timeout=5.0)
            episode = client.start_episode()
            done = truncated = False
            length = 0
            while not (done or truncated):
                action = client.get_action(episode, obs)
                obs, reward, done, truncated, _ = env.step(action)
                client.log_returns(episode, reward)
                length += 1
            client.end_episode(episode, obs, truncated=truncated and not done)
            steps += length
            obs, _ = env.reset()
    except AgentsdkError as exc:  # e.g. the server went away while a remote client acted
        if not stop.is_set():
            print(f"client ({mode}): {exc}", file=sys.stderr, flush=True)
    finally:
        client.flush(timeout=15)
        stats = client.stats
        client.close(timeout=0)
    print(f"client ({mode}): {stats}", flush=True)
    resolved = stats.steps_acknowledged + stats.steps_rejected + stats.steps_dropped
    return steps, stats.steps_acknowledged, stats.steps_dropped, stats.steps_uploading - resolved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", required=True)
    parser.add_argument("--mode", choices=["remote", "local"], default="local")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--token", default=None)
    parser.add_argument(
        "--env", default="CartPole-v1", help="gymnasium env id to play [default: CartPole-v1]"
    )
    parser.add_argument(
        "--no-pace",
        action="store_true",
        help="play on while the server pushes back, like a game that cannot pause",
    )
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        steps, acknowledged, dropped, undelivered = play(
            args.address,
            args.mode,
            args.seed,
            args.max_steps,
            args.token,
            stop,
            pace=not args.no_pace,
            env_id=args.env,
        )
    except AgentsdkError as exc:  # could not even start: wrong address, token or version
        print(f"client ({args.mode}): {exc}", file=sys.stderr)
        return 1
    print(
        f"client ({args.mode}) played {steps} steps, server acknowledged {acknowledged}, "
        f"dropped by the client {dropped}, undelivered {undelivered}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
