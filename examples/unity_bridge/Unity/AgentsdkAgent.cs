// The MonoBehaviour that connects a game object's observations, actions and rewards to
// an agentsdk server. Subclass it:
//
//   public class Balancer : AgentsdkAgent
//   {
//       protected override object CollectObservation() { return new[] { x, v, angle, spin }; }
//       protected override void ApplyAction(object action) { push = ActionValue.AsInt(action); }
//       protected override void OnEpisodeBegin() { ResetPole(); }
//       void OnPoleFell() { AddReward(-1f); EndEpisode(); }
//   }
//
// Every `decisionPeriod` FixedUpdates the agent collects an observation and asks for an
// action. Rewards given with AddReward are credited to the latest action. EndEpisode
// sends the final observation and starts a new episode on the next decision.
//
// Modes:
//   Remote  POST /v1/act on the server. With `nonBlocking` (default) the request runs in
//           the background and the action is applied when it arrives (a frame or so
//           later; the previous action stays in force meanwhile), so the frame never waits
//           on the network.
//   Local   the OnnxPolicyRunner computes actions in-process (no network per step); the
//           server still receives the experience and trains.
//   Deploy  the OnnxPolicyRunner alone: no server, nothing recorded (a shipped game).
//
// Agents with the same address and token share one PolicyClient (one upload thread).

#if UNITY_5_3_OR_NEWER
using System;
using System.Collections.Generic;
using System.Threading.Tasks;
using UnityEngine;

namespace Agentsdk.Unity
{
    public enum InferenceMode { Remote, Local, Deploy }

    public abstract class AgentsdkAgent : MonoBehaviour
    {
        [Tooltip("The agentsdk server, e.g. http://127.0.0.1:9900 (env AGENTSDK_ADDRESS overrides).")]
        [SerializeField] private string serverAddress = "http://127.0.0.1:9900";
        [Tooltip("Bearer token when the server was started with --token (env AGENTSDK_TOKEN overrides).")]
        [SerializeField] private string token = "";
        [SerializeField] private InferenceMode mode = InferenceMode.Remote;
        [Tooltip("Local and Deploy modes: the runner holding the exported policy.")]
        [SerializeField] private OnnxPolicyRunner localPolicy;
        [Tooltip("FixedUpdates per decision (1: every physics step).")]
        [SerializeField] private int decisionPeriod = 1;
        [Tooltip("Re-apply the last action on FixedUpdates between decisions.")]
        [SerializeField] private bool repeatActionBetweenDecisions = true;
        [Tooltip("Remote mode: do not block the frame while the server answers.")]
        [SerializeField] private bool nonBlocking = true;
        [Tooltip("End the episode as truncated after this many decisions (0: never).")]
        [SerializeField] private int maxEpisodeDecisions;
        [Tooltip("Agent id sent with the experience (default: the game object's name).")]
        [SerializeField] private string agentId = "";

        private PolicyClient _client;
        private string _clientKey;
        private string _episode;
        private Task<object> _pending;
        private object _lastAction;
        private float _reward;
        private int _ticks;
        private int _decisions;

        /// <summary>The observation now (any form the server's observation space accepts).</summary>
        protected abstract object CollectObservation();

        /// <summary>Act on an action (Discrete: long; Box: NdArray; see ActionValue for casts).</summary>
        protected abstract void ApplyAction(object action);

        /// <summary>Reset the scene for a new episode.</summary>
        protected virtual void OnEpisodeBegin() { }

        /// <summary>Called when talking to the server failed; default: log it and disable the agent.</summary>
        protected virtual void OnAgentsdkError(AgentsdkException error)
        {
            Debug.LogError("agentsdk: " + error.Message, this);
            enabled = false;
        }

        /// <summary>The shared client (null in Deploy mode).</summary>
        public PolicyClient Client { get { return _client; } }

        public void AddReward(float reward) { _reward += reward; }

        /// <summary>Finish the episode now (truncated: cut off by a time limit, not a terminal state).</summary>
        public void EndEpisode(bool truncated = false)
        {
            if (_episode == null) return;
            try
            {
                WaitPending();
                FlushReward();
                _client.EndEpisode(_episode, CollectObservation(), truncated);
            }
            catch (AgentsdkException e) { OnAgentsdkError(e); }
            _episode = null;
        }

        protected virtual void OnEnable()
        {
            if (mode == InferenceMode.Deploy) return;
            string address = Environment.GetEnvironmentVariable("AGENTSDK_ADDRESS") ?? serverAddress;
            string tok = Environment.GetEnvironmentVariable("AGENTSDK_TOKEN") ?? token;
            ILocalPolicy local = mode == InferenceMode.Local ? localPolicy : null;
            if (mode == InferenceMode.Local && localPolicy == null)
            {
                Debug.LogError("agentsdk: Local mode needs an OnnxPolicyRunner in 'localPolicy'", this);
                enabled = false;
                return;
            }
            _clientKey = address + "|" + tok + "|" + (local == null ? "" : localPolicy.GetInstanceID().ToString());
            _client = SharedClients.Acquire(_clientKey, () => new PolicyClient(new PolicyClientOptions
            {
                Address = address, Token = string.IsNullOrEmpty(tok) ? null : tok, LocalPolicy = local,
                ClientId = Application.productName,
            }));
        }

        protected virtual void OnDisable()
        {
            if (_client == null) return;
            EndEpisode(truncated: true);
            SharedClients.Release(_clientKey);
            _client = null;
        }

        protected virtual void FixedUpdate()
        {
            if (_pending != null)
            {
                if (!_pending.IsCompleted)
                {
                    if (repeatActionBetweenDecisions && _lastAction != null) ApplyAction(_lastAction);
                    return;
                }
                if (!TakePending()) return;
            }
            if (_ticks++ % Math.Max(1, decisionPeriod) != 0)
            {
                if (repeatActionBetweenDecisions && _lastAction != null) ApplyAction(_lastAction);
                return;
            }
            Decide();
        }

        private void Decide()
        {
            if (mode == InferenceMode.Deploy)
            {
                _lastAction = localPolicy.Act(CollectObservation());
                ApplyAction(_lastAction);
                return;
            }
            try
            {
                if (_episode != null && maxEpisodeDecisions > 0 && _decisions >= maxEpisodeDecisions) EndEpisode(truncated: true);
                if (_episode == null)
                {
                    _episode = _client.StartEpisode(null, string.IsNullOrEmpty(agentId) ? name : agentId);
                    _decisions = 0;
                    _reward = 0;
                    OnEpisodeBegin();
                }
                FlushReward();
                object obs = CollectObservation();
                _decisions++;
                if (mode == InferenceMode.Remote && nonBlocking)
                {
                    _pending = _client.GetActionAsync(_episode, obs);
                    if (_pending.IsCompleted) TakePending();
                    return;
                }
                _lastAction = _client.GetAction(_episode, obs);
                ApplyAction(_lastAction);
            }
            catch (AgentsdkException e) { OnAgentsdkError(e); }
        }

        private bool TakePending()
        {
            var task = _pending;
            _pending = null;
            try
            {
                _lastAction = task.GetAwaiter().GetResult();
                ApplyAction(_lastAction);
                return true;
            }
            catch (AgentsdkException e)
            {
                OnAgentsdkError(e);
                return false;
            }
        }

        private void WaitPending()
        {
            if (_pending == null) return;
            var task = _pending;
            _pending = null;
            _lastAction = task.GetAwaiter().GetResult();  // the episode needs this action recorded before it ends
        }

        private void FlushReward()
        {
            if (_reward != 0f && _episode != null) _client.LogReturns(_episode, _reward);
            _reward = 0f;
        }

        /// <summary>One PolicyClient per (address, token, local policy), shared by reference count.</summary>
        private static class SharedClients
        {
            private static readonly Dictionary<string, KeyValuePair<PolicyClient, int>> Clients =
                new Dictionary<string, KeyValuePair<PolicyClient, int>>();

            public static PolicyClient Acquire(string key, Func<PolicyClient> create)
            {
                KeyValuePair<PolicyClient, int> entry;
                if (!Clients.TryGetValue(key, out entry)) entry = new KeyValuePair<PolicyClient, int>(create(), 0);
                Clients[key] = new KeyValuePair<PolicyClient, int>(entry.Key, entry.Value + 1);
                return entry.Key;
            }

            public static void Release(string key)
            {
                KeyValuePair<PolicyClient, int> entry;
                if (!Clients.TryGetValue(key, out entry)) return;
                if (entry.Value > 1) { Clients[key] = new KeyValuePair<PolicyClient, int>(entry.Key, entry.Value - 1); return; }
                Clients.Remove(key);
                entry.Key.Dispose();  // uploads what is finished, then stops the worker
            }
        }
    }
}
#endif
