// PolicyClient: embed a learning policy in an application that owns its loop.
//
//   using (var client = new PolicyClient("http://127.0.0.1:9900"))
//   {
//       string episode = client.StartEpisode();
//       long action = (long)client.GetAction(episode, obs);   // Discrete: long; Box: NdArray
//       client.LogReturns(episode, reward);
//       client.EndEpisode(episode, lastObs);                   // truncated: true at a time limit
//       client.Flush();
//   }
//
// The same calls as the Python client (agentsdk_client.PolicyClient). Trajectories are
// assembled here (PROTOCOL.md /v1/experience: T+1 observations per chunk, chunks of at most
// MaxChunkSteps steps, cut lazily when the next observation arrives) and uploaded by a
// background thread with an idempotency key (batch_id) that is reused on every retry.

using System;
using System.Collections.Generic;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;

namespace Agentsdk
{
    /// <summary>Every setting of a PolicyClient, with its default.</summary>
    public sealed class PolicyClientOptions
    {
        /// <summary>Server URL, e.g. "http://127.0.0.1:9900".</summary>
        public string Address = "http://127.0.0.1:9900";
        /// <summary>Bearer token when the server was started with --token (default: none).</summary>
        public string Token;
        /// <summary>Sent as the Agentsdk-Protocol header (default PolicyClient.Protocol, "1.1"; override only to test the handshake).</summary>
        public string ProtocolVersion = PolicyClient.Protocol;
        /// <summary>Free text the server shows in metrics and logs (default: a random id).</summary>
        public string ClientId;
        /// <summary>Steps per uploaded chunk, at most (default 256; the server's limit caps it).</summary>
        public int MaxChunkSteps = 256;
        /// <summary>Timeout of one HTTP request (default 30 s).</summary>
        public TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);
        /// <summary>Steps held for upload while the server is unreachable; beyond it the oldest chunks are dropped (default 200000).</summary>
        public int MaxBufferedSteps = 200000;
        /// <summary>First retry delay of an upload; doubles per failure up to MaxBackoff (default 0.25 s).</summary>
        public TimeSpan InitialBackoff = TimeSpan.FromSeconds(0.25);
        /// <summary>Longest wait between upload retries unless the server's Retry-After asks for more (default 10 s).</summary>
        public TimeSpan MaxBackoff = TimeSpan.FromSeconds(10);
        /// <summary>How long Dispose waits for queued uploads (default 10 s).</summary>
        public TimeSpan DisposeFlushTimeout = TimeSpan.FromSeconds(10);
        /// <summary>Local inference: run this policy in-process instead of POST /v1/act (default null: remote).</summary>
        public ILocalPolicy LocalPolicy;
        /// <summary>Seed for local-mode sampling (default: time-based).</summary>
        public int? Seed;
        /// <summary>Replace the HTTP stack (tests); default: HttpClientHandler.</summary>
        public HttpMessageHandler Handler;
    }

    /// <summary>A policy the client can run in-process (e.g. OnnxPolicyRunner in Unity).</summary>
    public interface ILocalPolicy
    {
        /// <summary>The policy version the weights came from (recorded with every step).</summary>
        long PolicyVersion { get; }
        /// <summary>flatObs (float32, flat_obs_size) -> distInputs (float32, dist_inputs_size).</summary>
        void Compute(float[] flatObs, float[] distInputs);
    }

    /// <summary>What GET /v1/info announced.</summary>
    public sealed class ServerInfo
    {
        public string Protocol;
        public string ServerVersion;
        public Space ObservationSpace;
        public Space ActionSpace;
        public long PolicyVersion;
        public string Algorithm;
        public long MaxPolicyLag;
        public bool TokenRequired;
        public long MaxBodyBytes;
        public int MaxBatch;
        public int MaxChunkSteps;
        public int MaxChunks;
        public int DistInputsSize;
        public string Distribution;
        /// <summary>The whole decoded answer, for fields newer than this client.</summary>
        public MsgMap Raw;

        internal static ServerInfo Parse(object body)
        {
            var m = body as MsgMap;
            if (m == null) throw new ProtocolException("GET /v1/info did not answer a map");
            var limits = m.Get("limits") as MsgMap ?? new MsgMap();
            return new ServerInfo
            {
                Protocol = m.Get("protocol") as string ?? "",
                ServerVersion = m.Get("server_version") as string ?? "",
                ObservationSpace = Space.FromSpec(m.Get("observation_space"), "observation_space", 0),
                ActionSpace = Space.FromSpec(m.Get("action_space"), "action_space", 0),
                PolicyVersion = AsLong(m.Get("policy_version"), 0),
                Algorithm = m.Get("algorithm") as string ?? "",
                MaxPolicyLag = AsLong(m.Get("max_policy_lag"), -1),
                TokenRequired = m.Get("token_required") is bool && (bool)m.Get("token_required"),
                MaxBodyBytes = AsLong(limits.Get("max_body_bytes"), 64L << 20),
                MaxBatch = (int)AsLong(limits.Get("max_batch"), 1024),
                MaxChunkSteps = (int)AsLong(limits.Get("max_chunk_steps"), 256),
                MaxChunks = (int)AsLong(limits.Get("max_chunks"), 64),
                DistInputsSize = (int)AsLong(m.Get("dist_inputs_size"), 0),
                Distribution = m.Get("distribution") as string ?? "",
                Raw = m,
            };
        }

        internal static long AsLong(object v, long fallback) { return v is long ? (long)v : fallback; }
    }

    /// <summary>GET /v1/policy: the ONNX model and its contract (null from GetPolicy when unchanged).</summary>
    public sealed class PolicyDownload
    {
        public long PolicyVersion;
        public byte[] Onnx;
        public MsgMap Contract;
        public string ETag;
    }

    /// <summary>Convenience casts for the canonical action values GetAction returns.</summary>
    public static class ActionValue
    {
        /// <summary>A Discrete action as int.</summary>
        public static int AsInt(object action) { return checked((int)(long)action); }
        /// <summary>A Box action as float[] (raveled).</summary>
        public static float[] AsFloats(object action) { return ((NdArray)action).ToFloatArray(); }
        /// <summary>A MultiDiscrete / MultiBinary action as long[] (raveled).</summary>
        public static long[] AsLongs(object action) { return ((NdArray)action).ToLongArray(); }
    }

    public sealed class PolicyClient : IDisposable
    {
        /// <summary>The wire protocol this client speaks (PROTOCOL.md).</summary>
        public const string Protocol = "1.1";
        public const string DefaultAgentId = "agent0";

        private readonly PolicyClientOptions _opt;
        private readonly Transport _transport;
        private readonly object _lock = new object();
        private readonly Dictionary<string, Episode> _episodes = new Dictionary<string, Episode>();
        private readonly Random _rng;
        private ServerInfo _info;
        private ActionDistribution _dist;          // local mode: the distribution of _distContract's policy
        private PolicyContract _distContract;      // the contract _dist was built from (null: /v1/info's distribution)
        private Uploader _uploader;
        private bool _disposed;

        public PolicyClient(string address, string token = null)
            : this(new PolicyClientOptions { Address = address, Token = token }) { }

        /// <summary>Creates the client; no network traffic and no thread until first use.</summary>
        public PolicyClient(PolicyClientOptions options)
        {
            if (options == null) throw new ArgumentNullException("options");
            _opt = options;
            if (string.IsNullOrEmpty(_opt.ClientId)) _opt.ClientId = "csharp-" + Guid.NewGuid().ToString("N").Substring(0, 8);
            if (_opt.MaxChunkSteps < 1) throw new UsageException("MaxChunkSteps must be at least 1, got " + _opt.MaxChunkSteps);
            _transport = new Transport(_opt.Address, _opt.Token, _opt.ProtocolVersion, _opt.RequestTimeout, _opt.Handler);
            _rng = _opt.Seed.HasValue ? new Random(_opt.Seed.Value) : new Random();
        }

        public bool IsLocal { get { return _opt.LocalPolicy != null; } }

        /// <summary>Steps handed to the uploader (in finished chunks).</summary>
        public long StepsRecorded { get { return _uploader == null ? 0 : _uploader.StepsQueued; } }
        /// <summary>Steps the server confirmed (200 on /v1/experience).</summary>
        public long StepsUploaded { get { return _uploader == null ? 0 : _uploader.StepsUploaded; } }
        /// <summary>Steps given up: buffer overflow while the server was unreachable, or a batch the server rejected.</summary>
        public long StepsDropped { get { return _uploader == null ? 0 : _uploader.StepsDropped; } }
        /// <summary>The newest policy version seen in an answer.</summary>
        public long LastPolicyVersion { get; private set; }

        /// <summary>GET /v1/info (once) and check that the server speaks this protocol.</summary>
        public ServerInfo Connect()
        {
            ThrowIfDisposed();
            if (_info != null) return _info;
            var reply = _transport.Get("v1/info");
            var info = ServerInfo.Parse(reply.Body);
            string ours = Major(_opt.ProtocolVersion), theirs = Major(info.Protocol);
            if (ours != theirs)
                throw new VersionMismatchException("server at " + _transport.BaseAddress + " speaks protocol " + info.Protocol
                                                   + ", this client speaks " + _opt.ProtocolVersion + "; upgrade the older side");
            PolicyForm.CheckTrainable(info.ActionSpace);
            var local = _opt.LocalPolicy;
            if (local is IContractPolicy)
            {
                var c = (IContractPolicy)local;
                if (c.FlatObsSize != info.ObservationSpace.FlatSize || c.DistInputsSize != PolicyForm.DistInputsSize(info.ActionSpace))
                    throw new UsageException("the local policy expects " + c.FlatObsSize + " observation values and gives " + c.DistInputsSize
                                             + " distribution inputs, but the server's spaces need " + info.ObservationSpace.FlatSize + " and "
                                             + PolicyForm.DistInputsSize(info.ActionSpace) + "; load the model this server exported");
            }
            lock (_lock)
            {
                LastPolicyVersion = info.PolicyVersion;
                _info = info;
            }
            return info;
        }

        public ServerInfo Info { get { return Connect(); } }

        // -- episodes ---------------------------------------------------------------------

        /// <summary>Begin an episode; returns its id (a new UUID unless given).</summary>
        public string StartEpisode(string episodeId = null, string agentId = DefaultAgentId)
        {
            Connect();
            ThrowIfUploadFailed();
            if (string.IsNullOrEmpty(episodeId)) episodeId = Guid.NewGuid().ToString("N");
            lock (_lock)
            {
                if (_episodes.ContainsKey(episodeId)) throw new UsageException("episode '" + episodeId + "' was already started");
                _episodes[episodeId] = new Episode(episodeId, string.IsNullOrEmpty(agentId) ? DefaultAgentId : agentId);
            }
            return episodeId;
        }

        /// <summary>The action for this observation (server-side or local inference); recorded for training.</summary>
        public object GetAction(string episodeId, object observation, bool deterministic = false)
        {
            return GetActions(new[] { episodeId }, new[] { observation }, deterministic)[0];
        }

        /// <summary>One call for many episodes / agents (one POST /v1/act in remote mode).</summary>
        public object[] GetActions(IList<string> episodeIds, IList<object> observations, bool deterministic = false)
        {
            if (SynchronizationContext.Current == null || IsLocal) return GetActionsAsync(episodeIds, observations, deterministic).GetAwaiter().GetResult();
            return Task.Run(() => GetActionsAsync(episodeIds, observations, deterministic)).GetAwaiter().GetResult();
        }

        /// <summary>
        /// As GetAction, without blocking the caller while the server answers. Do not call
        /// for the same episode again until the task completes.
        /// </summary>
        public async Task<object> GetActionAsync(string episodeId, object observation, bool deterministic = false)
        {
            var r = await GetActionsAsync(new[] { episodeId }, new[] { observation }, deterministic).ConfigureAwait(false);
            return r[0];
        }

        public async Task<object[]> GetActionsAsync(IList<string> episodeIds, IList<object> observations, bool deterministic = false)
        {
            var info = Connect();
            ThrowIfUploadFailed();
            if (episodeIds.Count != observations.Count || episodeIds.Count == 0)
                throw new UsageException("GetActions needs one observation per episode id (got " + episodeIds.Count + " ids, " + observations.Count + " observations)");
            int n = episodeIds.Count;
            var eps = new Episode[n];
            var obs = new object[n];
            for (int i = 0; i < n; i++)
            {
                obs[i] = info.ObservationSpace.Coerce(observations[i], "observation");
                eps[i] = Observe(episodeIds[i], obs[i]);
            }
            StepResult[] steps;
            try
            {
                steps = IsLocal ? ActLocal(obs, null, deterministic) : await ActRemote(eps, obs, null, deterministic).ConfigureAwait(false);
            }
            catch
            {
                lock (_lock) foreach (var ep in eps) ep.ActionFailed();
                throw;
            }
            var actions = new object[n];
            lock (_lock)
            {
                for (int i = 0; i < n; i++)
                {
                    eps[i].Record(steps[i]);
                    actions[i] = steps[i].EnvAction;
                }
            }
            return actions;
        }

        /// <summary>
        /// Record an action the app chose itself (a human, a heuristic, a scripted bot).
        /// </summary>
        /// <param name="episodeId">The episode (from StartEpisode).</param>
        /// <param name="observation">The observation the action answers.</param>
        /// <param name="action">The action, in the action space's form.</param>
        /// <param name="logp">
        /// The log-probability with which the app's own logic chose the action, when known (a
        /// stochastic bot): a finite number &lt;= 0, e.g. Math.Log(p). It is recorded as the
        /// behaviour log-prob, which APPO and IMPALA correct for. Without it (null) the current
        /// policy's log-prob of the action is recorded (the step counts as if the policy had
        /// chosen it). Either way the policy-form action, distribution inputs and policy version
        /// come from the current policy's evaluation of the action (one POST /v1/act in remote mode).
        /// </param>
        /// <exception cref="UsageException">logp is NaN, infinite or positive.</exception>
        public void LogAction(string episodeId, object observation, object action, double? logp = null)
        {
            var info = Connect();
            ThrowIfUploadFailed();
            var o = info.ObservationSpace.Coerce(observation, "observation");
            var a = info.ActionSpace.Coerce(action, "action");
            if (logp.HasValue) CheckLogp(logp.Value);
            var ep = Observe(episodeId, o);
            StepResult step;
            try
            {
                step = IsLocal
                    ? ActLocal(new[] { o }, new[] { a }, false)[0]
                    : Sync.Run(() => ActRemote(new[] { ep }, new[] { o }, new[] { a }, false))[0];
            }
            catch
            {
                lock (_lock) ep.ActionFailed();
                throw;
            }
            if (logp.HasValue) step.Logp = (float)logp.Value;
            lock (_lock) ep.Record(step);
        }

        /// <summary>A behaviour log-prob must be a finite number &lt;= 0 (as the Python client's check_logp).</summary>
        private static void CheckLogp(double logp)
        {
            if (double.IsNaN(logp) || double.IsInfinity(logp) || logp > 0.0)
                throw new UsageException("logp must be a finite log-probability (<= 0), got "
                                         + logp.ToString("R", System.Globalization.CultureInfo.InvariantCulture)
                                         + "; pass the log of the probability with which the app chose the action "
                                         + "(e.g. Math.Log(p) for 0 < p <= 1), or leave it out (null) to record the policy's own");
        }

        /// <summary>Add a reward to the episode's latest action (rewards before the first action go to the first).</summary>
        public void LogReturns(string episodeId, double reward)
        {
            lock (_lock) Find(episodeId).AddReward((float)reward);
        }

        /// <summary>
        /// Finish an episode with the observation after its last action. truncated: cut off by a
        /// time limit (the value bootstraps from this observation) rather than a terminal state.
        /// </summary>
        public void EndEpisode(string episodeId, object observation, bool truncated = false)
        {
            var info = Connect();
            ThrowIfUploadFailed();
            var o = info.ObservationSpace.Coerce(observation, "observation");
            MsgMap chunk;
            int steps;
            lock (_lock)
            {
                var ep = Find(episodeId);
                _episodes.Remove(episodeId);
                steps = ep.Steps;
                chunk = steps > 0 ? ep.Cut(o, !truncated, truncated, info) : null;
            }
            if (chunk != null) Upload.Enqueue(chunk, steps);
        }

        /// <summary>
        /// Wait until every finished chunk has been uploaded (true) or the timeout passed (false).
        /// Steps of running episodes go out when their episode ends or their chunk fills.
        /// </summary>
        public bool Flush(TimeSpan? timeout = null)
        {
            ThrowIfDisposed();
            bool done = _uploader == null || _uploader.WaitIdle(timeout ?? TimeSpan.FromMinutes(5));
            ThrowIfUploadFailed();
            return done;
        }

        /// <summary>GET /v1/policy: the current ONNX model, or null when it still has this ETag.</summary>
        public PolicyDownload GetPolicy(string ifNoneMatch = null)
        {
            ThrowIfDisposed();
            var reply = _transport.Get("v1/policy", ifNoneMatch);
            if (reply.Status == 304) return null;
            var m = reply.Body as MsgMap;
            if (m == null) throw new ProtocolException("GET /v1/policy did not answer a map");
            return new PolicyDownload
            {
                PolicyVersion = ServerInfo.AsLong(m.Get("policy_version"), 0),
                Onnx = m.Get("onnx") as byte[],
                Contract = m.Get("contract") as MsgMap,
                ETag = reply.ETag,
            };
        }

        /// <summary>GET /metrics (Prometheus text).</summary>
        public string GetMetricsText() { ThrowIfDisposed(); return _transport.GetText("metrics"); }

        /// <summary>Upload what is finished (waiting up to DisposeFlushTimeout), stop the worker, close connections.</summary>
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            if (_uploader != null)
            {
                _uploader.WaitIdle(_opt.DisposeFlushTimeout);
                _uploader.Stop();
            }
            _transport.Dispose();
        }

        // -- internals ----------------------------------------------------------------------

        private Uploader Upload
        {
            get
            {
                lock (_lock)
                {
                    if (_uploader == null) _uploader = new Uploader(_transport, _opt, _info);
                    return _uploader;
                }
            }
        }

        private void ThrowIfDisposed()
        {
            if (_disposed) throw new UsageException("this PolicyClient was disposed; create a new one");
        }

        private void ThrowIfUploadFailed()
        {
            ThrowIfDisposed();
            var u = _uploader;
            var e = u == null ? null : u.TakeFatalError();
            if (e != null) throw e;
        }

        private Episode Find(string episodeId)
        {
            Episode ep;
            if (episodeId == null || !_episodes.TryGetValue(episodeId, out ep))
                throw new UsageException("unknown episode '" + episodeId + "': call StartEpisode first (or it already ended)");
            return ep;
        }

        /// <summary>A new observation for an episode: closes its previous step, cutting a full chunk.</summary>
        private Episode Observe(string episodeId, object obs)
        {
            MsgMap chunk = null;
            int steps = 0;
            Episode ep;
            lock (_lock)
            {
                ep = Find(episodeId);
                if (!ep.AwaitingAction && ep.Steps >= ChunkSteps)
                {
                    steps = ep.Steps;
                    chunk = ep.Cut(obs, false, false, _info);
                }
                ep.AddObservation(obs);
            }
            if (chunk != null) Upload.Enqueue(chunk, steps);
            return ep;
        }

        private int ChunkSteps { get { return Math.Max(1, Math.Min(_opt.MaxChunkSteps, _info.MaxChunkSteps)); } }

        private StepResult[] ActLocal(object[] obs, object[] given, bool deterministic)
        {
            var policy = _opt.LocalPolicy;
            var contractPolicy = policy as IContractPolicy;
            var space = _info.ActionSpace;
            int d = PolicyForm.DistInputsSize(space);
            var r = new StepResult[obs.Length];
            for (int i = 0; i < obs.Length; i++)
            {
                var flat = _info.ObservationSpace.Flatten(obs[i]);
                var inputs = new float[d];
                long version;
                PolicyContract contract;
                lock (policy)
                {
                    policy.Compute(flat, inputs);
                    version = policy.PolicyVersion;
                    contract = contractPolicy == null ? null : contractPolicy.Contract;
                }
                var dist = LocalDistribution(contract, version);
                var step = new StepResult { DistInputs = inputs, PolicyVersion = version };
                if (given != null)
                {
                    step.EnvAction = given[i];
                    step.PolicyAction = PolicyForm.FromEnv(space, given[i]);
                    bool ints = step.PolicyAction.IsInteger;
                    step.Logp = dist.Logp(inputs, ints ? step.PolicyAction.ToLongArray() : null, ints ? null : step.PolicyAction.ToFloatArray());
                }
                else
                {
                    PolicySample s;
                    lock (_rng) s = dist.Sample(inputs, _rng, deterministic);
                    step.EnvAction = PolicyForm.ToEnv(space, s.Ints, s.Raw);
                    step.PolicyAction = s.Ints != null
                        ? (space is DiscreteSpace ? new NdArray("int64", new int[0], NdArray.FromLongs(s.Ints).Data) : NdArray.FromLongs(s.Ints))
                        : NdArray.FromFloats(s.Raw);
                    step.Logp = s.Logp;
                }
                r[i] = step;
            }
            LastPolicyVersion = policy.PolicyVersion;
            return r;
        }

        /// <summary>
        /// Local mode: the distribution of the policy that just computed the inputs. Each policy
        /// version may carry its own (DQN's epsilon changes with the version), so it comes from
        /// that policy's contract; a local policy without one acts with /v1/info's distribution.
        /// A distribution this client does not know is refused, never replaced by another.
        /// </summary>
        private ActionDistribution LocalDistribution(PolicyContract contract, long version)
        {
            lock (_lock)
            {
                if (_dist != null && ReferenceEquals(contract, _distContract)) return _dist;
                string name = contract != null ? contract.Distribution : _info.Distribution;
                try
                {
                    _dist = ActionDistribution.For(_info.ActionSpace, name, contract != null ? contract.Epsilon : null);
                }
                catch (AgentsdkException e) when (e is ProtocolException || e is SpaceException)
                {
                    throw new ProtocolException("policy version " + version + " cannot be acted on locally: " + e.Message
                                                + (contract == null ? " (the local policy has no contract; /v1/info named '" + name + "')" : ""), e);
                }
                _distContract = contract;
                return _dist;
            }
        }

        private async Task<StepResult[]> ActRemote(Episode[] eps, object[] obs, object[] given, bool deterministic)
        {
            int n = obs.Length;
            var req = new MsgMap();
            req.Add("observations", _info.ObservationSpace.Stack(obs));
            req.Add("deterministic", deterministic);
            if (n > 1)
            {
                var ids = new List<object>(n);
                foreach (var ep in eps) ids.Add(ep.AgentId);
                req.Add("agent_ids", ids);
            }
            if (given != null) req.Add("actions", _info.ActionSpace.Stack(given));
            var reply = await _transport.PostAsync("v1/act", MsgPack.Encode(req)).ConfigureAwait(false);
            var m = reply.Body as MsgMap;
            if (m == null) throw new ProtocolException("POST /v1/act did not answer a map");
            try
            {
                var actions = _info.ActionSpace.Unstack(m["actions"], n, "actions");
                var policyActions = (NdArray)m["policy_actions"];
                var logp = (NdArray)m["logp"];
                var dist = (NdArray)m["dist_inputs"];
                long version = (long)m["policy_version"];
                if (policyActions.Ndim < 1 || policyActions.Shape[0] != n || logp.Count != n || dist.Ndim != 2 || dist.Shape[0] != n)
                    throw new ProtocolException("POST /v1/act answered arrays whose first axis is not " + n);
                var r = new StepResult[n];
                for (int i = 0; i < n; i++)
                {
                    r[i] = new StepResult
                    {
                        EnvAction = given != null ? given[i] : actions[i],
                        PolicyAction = policyActions.Row(i),
                        Logp = logp.GetFloat(i),
                        DistInputs = dist.Row(i).ToFloatArray(),
                        PolicyVersion = version,
                    };
                }
                LastPolicyVersion = version;
                return r;
            }
            catch (Exception e) when (e is KeyNotFoundException || e is InvalidCastException || e is SpaceException)
            {
                throw new ProtocolException("POST /v1/act answered an unexpected message: " + e.Message, e);
            }
        }

        private static string Major(string version)
        {
            if (version == null) return "";
            int dot = version.IndexOf('.');
            return dot < 0 ? version : version.Substring(0, dot);
        }

        // -- one episode's trajectory under construction -----------------------------------

        internal sealed class StepResult
        {
            public object EnvAction;
            public NdArray PolicyAction;
            public float Logp;
            public float[] DistInputs;
            public long PolicyVersion;
        }

        private sealed class Episode
        {
            public readonly string Id;
            public readonly string AgentId;
            private int _chunkIndex;
            private readonly List<object> _obs = new List<object>();
            private readonly List<NdArray> _actions = new List<NdArray>();
            private readonly List<float> _rewards = new List<float>();
            private readonly List<float> _logp = new List<float>();
            private readonly List<float[]> _dist = new List<float[]>();
            private readonly List<long> _versions = new List<long>();
            private float _pendingReward;
            private bool _actFailed;

            public Episode(string id, string agentId) { Id = id; AgentId = agentId; }

            public int Steps { get { return _actions.Count; } }

            public bool AwaitingAction { get { return _obs.Count > _actions.Count; } }

            public void AddObservation(object obs)
            {
                if (AwaitingAction)
                {
                    if (!_actFailed)
                        throw new UsageException("episode '" + Id + "' already has an observation waiting for its action; "
                                                 + "call GetAction/LogAction once per observation, and wait for GetActionAsync to finish");
                    // The last call failed, so the app did not act on that observation: this one replaces it.
                    _obs[_obs.Count - 1] = obs;
                    _actFailed = false;
                    return;
                }
                _obs.Add(obs);
            }

            /// <summary>Inference for the pending observation failed: the next observation replaces it.</summary>
            public void ActionFailed() { if (AwaitingAction) _actFailed = true; }

            public void Record(StepResult s)
            {
                _actions.Add(s.PolicyAction);
                _rewards.Add(_pendingReward);
                _pendingReward = 0;
                _logp.Add(s.Logp);
                _dist.Add(s.DistInputs);
                _versions.Add(s.PolicyVersion);
            }

            public void AddReward(float r)
            {
                if (_rewards.Count == 0) _pendingReward += r;
                else _rewards[_rewards.Count - 1] += r;
            }

            /// <summary>The chunk of every recorded step plus the observation after the last; starts the next chunk from it.</summary>
            public MsgMap Cut(object nextObs, bool terminated, bool truncated, ServerInfo info)
            {
                int t = _actions.Count;
                if (_actFailed && _obs.Count == t + 1) { _obs.RemoveAt(t); _actFailed = false; }
                if (_obs.Count != t)
                    throw new UsageException("episode '" + Id + "' has an observation without an action; call GetAction before ending it");
                _obs.Add(nextObs);
                var first = _actions[0];
                var dist = new float[t * (t == 0 ? 0 : _dist[0].Length)];
                for (int i = 0; i < t; i++) Array.Copy(_dist[i], 0, dist, i * _dist[i].Length, _dist[i].Length);
                var chunk = new MsgMap();
                chunk.Add("episode_id", Id);
                chunk.Add("agent_id", AgentId);
                chunk.Add("chunk_index", (long)_chunkIndex);
                chunk.Add("observations", info.ObservationSpace.Stack(_obs));
                chunk.Add("policy_actions", NdArray.Stack(_actions, first.Dtype, first.Shape));
                chunk.Add("rewards", NdArray.FromFloats(_rewards.ToArray(), t));
                chunk.Add("terminated", terminated);
                chunk.Add("truncated", truncated);
                chunk.Add("logp", NdArray.FromFloats(_logp.ToArray(), t));
                chunk.Add("dist_inputs", NdArray.FromFloats(dist, t, _dist[0].Length));
                chunk.Add("policy_versions", NdArray.FromLongs(_versions.ToArray(), t));
                _chunkIndex++;
                _obs.Clear();
                _actions.Clear();
                _rewards.Clear();
                _logp.Clear();
                _dist.Clear();
                _versions.Clear();
                return chunk;
            }
        }
    }

    /// <summary>
    /// A local policy that also states its input and output widths (checked on Connect) and
    /// the contract of the policy version it runs: its distribution (and, for EpsilonGreedy,
    /// epsilon) is what local mode samples with. Read under lock(policy) together with
    /// Compute and PolicyVersion, so swap the model and the contract under that lock too.
    /// </summary>
    public interface IContractPolicy : ILocalPolicy
    {
        int FlatObsSize { get; }
        int DistInputsSize { get; }
        /// <summary>The contract of the loaded policy version (null: use /v1/info's distribution).</summary>
        PolicyContract Contract { get; }
    }
}
