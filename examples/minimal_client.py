"""The smallest useful app: CartPole, trained by a running `agentsdk serve --env CartPole-v1`.

agentsdk serve --env CartPole-v1 --port 9900 &
python examples/minimal_client.py http://127.0.0.1:9900
"""

import sys

import gymnasium as gym

from agentsdk_client import PolicyClient

address = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:9900"
env = gym.make("CartPole-v1")

with PolicyClient(address, inference_mode="local") as client:
    for _ in range(200):
        episode = client.start_episode()
        obs, _ = env.reset()
        done = truncated = False
        total = 0.0
        while not (done or truncated):
            action = client.get_action(episode, obs)
            obs, reward, done, truncated, _ = env.step(action)
            client.log_returns(episode, reward)
            total += reward
        client.end_episode(episode, obs, truncated=truncated and not done)
        print(f"return {total:.0f} (policy v{client.policy_version})")
