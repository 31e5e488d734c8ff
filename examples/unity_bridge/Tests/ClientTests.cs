// Unit checks of PolicyClient without sockets: a fake HttpMessageHandler plays the server.
// Covers what the end-to-end run does not provoke: chunk cutting at MaxChunkSteps, the
// same batch_id on every retry (503, then 429 + Retry-After), error mapping, and the policy
// contract's distribution (protocol 1.1: EpsilonGreedy's epsilon, unknown names refused),
// which local mode takes from the policy version in use, and LogAction's behaviour logp
// (recorded in place of the policy's, refused unless finite and <= 0).
//
//   mono bin/clienttests.exe      prints "N passed, M failed"; exit 1 on failure

using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;
using Agentsdk;

public static class ClientTests
{
    private sealed class FakeServer : HttpMessageHandler
    {
        public readonly List<MsgMap> Experience = new List<MsgMap>();
        public readonly List<string> BatchIds = new List<string>();
        public readonly List<string> ProtocolHeaders = new List<string>();
        public readonly Queue<HttpStatusCode> ExperienceFailures = new Queue<HttpStatusCode>();
        public HttpStatusCode InfoStatus = HttpStatusCode.OK;
        public int MaxChunkSteps = 256;
        public string Distribution = "Categorical";
        public const float EvaluatedLogp = -0.5f;

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            IEnumerable<string> values;
            if (request.Headers.TryGetValues("Agentsdk-Protocol", out values)) foreach (var v in values) ProtocolHeaders.Add(v);
            string path = request.RequestUri.AbsolutePath;
            byte[] body = request.Content == null ? null : await request.Content.ReadAsByteArrayAsync();
            if (path == "/v1/info")
            {
                if (InfoStatus != HttpStatusCode.OK) return Error(InfoStatus, "unauthorized", "missing or wrong token: pass --token");
                var limits = new MsgMap();
                limits.Add("max_body_bytes", 1L << 20);
                limits.Add("max_batch", 64L);
                limits.Add("max_chunk_steps", (long)MaxChunkSteps);
                limits.Add("max_chunks", 2L);
                var info = new MsgMap();
                info.Add("protocol", "1.0");  // a 1.0 server: same major, so this 1.1 client talks to it
                info.Add("server_version", "fake");
                info.Add("observation_space", new BoxSpace(new[] { -1000.0, -10.0 }, new[] { 1000.0, 10.0 }, new[] { 2 }).ToSpec());
                info.Add("action_space", new DiscreteSpace(3).ToSpec());
                info.Add("policy_version", 7L);
                info.Add("algorithm", "PPO");
                info.Add("max_policy_lag", 1L);
                info.Add("token_required", false);
                info.Add("limits", limits);
                info.Add("dist_inputs_size", 3L);
                info.Add("distribution", Distribution);
                return Ok(info);
            }
            if (path == "/v1/act")
            {
                var req = (MsgMap)MsgPack.Decode(body);
                var obs = (NdArray)req["observations"];
                int n = obs.Shape[0];
                var actions = NdArray.Zeros("int64", n);
                for (int i = 0; i < n; i++) actions.SetLong(i, ((long)obs.GetDouble(i * 2)) % 3);
                var logps = new float[n];
                if (req.ContainsKey("actions"))
                {
                    // Evaluating the app's own actions (LogAction): they are the policy actions,
                    // with a log-prob of their own so that a recorded logp can be told apart.
                    actions = (NdArray)req["actions"];
                    for (int i = 0; i < n; i++) logps[i] = EvaluatedLogp;
                }
                var resp = new MsgMap();
                resp.Add("actions", actions);
                resp.Add("policy_actions", actions);
                resp.Add("logp", NdArray.FromFloats(logps));
                resp.Add("dist_inputs", NdArray.Zeros("float32", n, 3));
                resp.Add("policy_version", 7L);
                return Ok(resp);
            }
            if (path == "/v1/experience")
            {
                var req = (MsgMap)MsgPack.Decode(body);
                lock (BatchIds) BatchIds.Add((string)req["batch_id"]);
                HttpStatusCode fail = 0;
                lock (ExperienceFailures) if (ExperienceFailures.Count > 0) fail = ExperienceFailures.Dequeue();
                if (fail == (HttpStatusCode)429)
                {
                    var r = Error(fail, "inbox_full", "training inbox full");
                    r.Headers.TryAddWithoutValidation("Retry-After", "0");
                    return r;
                }
                if (fail != 0) return Error(fail, "unavailable", "restarting");
                lock (Experience) Experience.Add(req);
                var resp = new MsgMap();
                resp.Add("accepted_steps", 0L);
                resp.Add("duplicate", false);
                resp.Add("policy_version", 7L);
                return Ok(resp);
            }
            return Error(HttpStatusCode.NotFound, "not_found", "no such path " + path);
        }

        private static HttpResponseMessage Ok(object body)
        {
            return new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(MsgPack.Encode(body)) };
        }

        private static HttpResponseMessage Error(HttpStatusCode status, string code, string message)
        {
            var err = new MsgMap();
            err.Add("code", code);
            err.Add("message", message);
            err.Add("request_id", "req-1");
            var env = new MsgMap();
            env.Add("error", err);
            var r = Ok(env);
            r.StatusCode = status;
            return r;
        }
    }

    private static PolicyClient NewClient(FakeServer fake)
    {
        return new PolicyClient(new PolicyClientOptions
        {
            Address = "http://fake:1", Handler = fake, InitialBackoff = TimeSpan.FromMilliseconds(5),
        });
    }

    private static void Check(bool ok, string what) { if (!ok) throw new Exception(what); }

    private static void ChunksAreCutAtTheLimitAndChain()
    {
        var fake = new FakeServer();
        using (var client = NewClient(fake))
        {
            string ep = client.StartEpisode();
            float[] obs = { 0f, 0f };
            for (int t = 0; t < 600; t++)
            {
                long a = (long)client.GetAction(ep, obs);
                Check(a == t % 3, "action " + a + " at step " + t);
                client.LogReturns(ep, 1.0);
                obs = new float[] { t + 1, 0f };
            }
            client.EndEpisode(ep, new[] { 0.5f, 0.5f }, truncated: true);
            Check(client.Flush(TimeSpan.FromSeconds(10)), "flush timed out");
            Check(client.StepsUploaded == 600, "uploaded " + client.StepsUploaded);
        }
        var chunks = new List<MsgMap>();
        foreach (var batch in fake.Experience) foreach (var c in (List<object>)batch["chunks"]) chunks.Add((MsgMap)c);
        Check(chunks.Count == 3, chunks.Count + " chunks");
        int[] sizes = { 256, 256, 88 };
        for (int k = 0; k < 3; k++)
        {
            var c = chunks[k];
            var o = (NdArray)c["observations"];
            Check((long)c["chunk_index"] == k, "chunk_index");
            Check(((NdArray)c["rewards"]).Count == sizes[k] && o.Shape[0] == sizes[k] + 1, "chunk " + k + " sizes");
            Check((bool)c["truncated"] == (k == 2) && !(bool)c["terminated"], "flags of chunk " + k);
            Check(((NdArray)c["policy_actions"]).Dtype == "int64" && ((NdArray)c["policy_actions"]).Ndim == 1, "policy_actions layout");
            Check(((NdArray)c["rewards"]).GetDouble(0) == 1.0, "reward credited");
            if (k > 0)
            {
                var prev = (NdArray)chunks[k - 1]["observations"];
                Check(prev.Row(prev.Shape[0] - 1).GetDouble(0) == o.Row(0).GetDouble(0), "chunks do not chain");
            }
        }
        Check(((NdArray)chunks[2]["observations"]).Row(88).GetDouble(0) == 0.5, "final observation");
        Check(PolicyClient.Protocol == "1.1", "PolicyClient.Protocol " + PolicyClient.Protocol);
        Check(fake.ProtocolHeaders.Count > 0, "no Agentsdk-Protocol header sent");
        foreach (var h in fake.ProtocolHeaders) Check(h == PolicyClient.Protocol, "protocol header " + h);
    }

    private static void RetriesReuseTheBatchId()
    {
        var fake = new FakeServer();
        fake.ExperienceFailures.Enqueue(HttpStatusCode.ServiceUnavailable);
        fake.ExperienceFailures.Enqueue((HttpStatusCode)429);
        using (var client = NewClient(fake))
        {
            string ep = client.StartEpisode();
            client.GetAction(ep, new[] { 1f, 1f });
            client.EndEpisode(ep, new[] { 2f, 2f });
            Check(client.Flush(TimeSpan.FromSeconds(10)), "flush timed out");
            Check(client.StepsUploaded == 1 && client.StepsDropped == 0, "counts");
        }
        Check(fake.BatchIds.Count == 3, fake.BatchIds.Count + " attempts");
        Check(fake.BatchIds[0] == fake.BatchIds[1] && fake.BatchIds[1] == fake.BatchIds[2], "batch_id changed between retries");
        Check(fake.Experience.Count == 1, "accepted " + fake.Experience.Count);
    }

    private static void WrongTokenShowsTheServersMessage()
    {
        var fake = new FakeServer { InfoStatus = HttpStatusCode.Unauthorized };
        using (var client = NewClient(fake))
        {
            try
            {
                client.StartEpisode();
                throw new Exception("no exception");
            }
            catch (AuthenticationException e)
            {
                Check(e.Status == 401 && e.Code == "unauthorized" && e.RequestId == "req-1", "fields");
                Check(e.Message.Contains("missing or wrong token"), e.Message);
            }
        }
    }

    private static void BadObservationNamesTheSpace()
    {
        using (var client = NewClient(new FakeServer()))
        {
            string ep = client.StartEpisode();
            try
            {
                client.GetAction(ep, new[] { 1f, 2f, 3f });
                throw new Exception("no exception");
            }
            catch (SpaceException e) { Check(e.Message.Contains("expected 2 values") && e.Message.Contains("Box("), e.Message); }
            try
            {
                client.GetAction(ep, new[] { 1f, 99f });  // index 1 is bounded by 10
                throw new Exception("no exception");
            }
            catch (SpaceException e) { Check(e.Message.Contains("outside the bounds"), e.Message); }
            client.GetAction(ep, new[] { 1f, 2f });  // the episode is still usable
        }
    }

    // -- the policy contract's distribution ----------------------------------------------------

    private const string ObsSpaceJson =
        "{\"type\": \"Box\", \"shape\": [2], \"dtype\": \"float32\", "
        + "\"low\": {\"dtype\": \"float32\", \"shape\": [2], \"values\": [-1000.0, -10.0]}, "
        + "\"high\": {\"dtype\": \"float32\", \"shape\": [2], \"values\": [1000.0, 10.0]}}";

    /// <summary>A contract for FakeServer's spaces (Box(2) observations, the given action space JSON).</summary>
    private static string ContractJson(long version, string distribution, string epsilon, string actionSpace = null, int distSize = 3)
    {
        return "{\"protocol\": \"1.1\", \"policy_version\": " + version + ", \"algorithm\": \"DQN\", "
               + "\"observation_space\": " + ObsSpaceJson + ", "
               + "\"action_space\": " + (actionSpace ?? "{\"type\": \"Discrete\", \"n\": 3, \"start\": 0}") + ", "
               + "\"distribution\": \"" + distribution + "\", \"dist_inputs_size\": " + distSize + ", \"flat_obs_size\": 2, "
               + "\"opset\": 17, \"input_name\": \"obs\", \"output_name\": \"dist_inputs\""
               + (epsilon == null ? "" : ", \"epsilon\": " + epsilon) + "}";
    }

    private static string Refusal(string json)
    {
        try
        {
            PolicyContract.FromJson(json);
            return null;
        }
        catch (ProtocolException e) { return e.Message; }
    }

    private static void ContractBuildsItsNamedDistribution()
    {
        var c = PolicyContract.FromJson(ContractJson(4, "EpsilonGreedy", "0.25"));
        Check(c.Epsilon == 0.25, "epsilon " + c.Epsilon);
        var eg = c.ActionDistribution as EpsilonGreedy;
        Check(eg != null && eg.Epsilon == 0.25, "distribution " + c.ActionDistribution);
        Check(PolicyContract.FromJson(ContractJson(4, "EpsilonGreedy", "0")).Epsilon == 0.0, "integer epsilon");
        Check(PolicyContract.FromJson(ContractJson(4, "Categorical", null)).ActionDistribution.Name == "Categorical", "Categorical");
        const string box = "{\"type\": \"Box\", \"shape\": [2], \"dtype\": \"float32\", "
                           + "\"low\": {\"dtype\": \"float32\", \"shape\": [2], \"values\": [-1.0, \"-inf\"]}, "
                           + "\"high\": {\"dtype\": \"float32\", \"shape\": [2], \"values\": [1.0, \"inf\"]}}";
        const string bounded = "{\"type\": \"Box\", \"shape\": [2], \"dtype\": \"float32\", "
                               + "\"low\": {\"dtype\": \"float32\", \"shape\": [2], \"values\": [-1.0, 0.0]}, "
                               + "\"high\": {\"dtype\": \"float32\", \"shape\": [2], \"values\": [1.0, 5.0]}}";
        Check(PolicyContract.FromJson(ContractJson(4, "SquashedGaussian", null, bounded, 4)).ActionDistribution is SquashedGaussian, "SquashedGaussian");
        Check(PolicyContract.FromJson(ContractJson(4, "DiagGaussian", null, box, 4)).ActionDistribution is DiagGaussian, "DiagGaussian");

        string m = Refusal(ContractJson(4, "Beta", null));
        Check(m != null && m.Contains("'Beta'") && m.Contains("this client knows Categorical, MultiCategorical, DiagGaussian, SquashedGaussian, EpsilonGreedy")
              && m.Contains("upgrade the client"), "unknown name: " + m);
        m = Refusal(ContractJson(4, "EpsilonGreedy", null));
        Check(m != null && m.Contains("epsilon"), "EpsilonGreedy without epsilon: " + m);
        m = Refusal(ContractJson(4, "EpsilonGreedy", "1.5"));
        Check(m != null && m.Contains("[0, 1]"), "epsilon out of range: " + m);
        m = Refusal(ContractJson(4, "EpsilonGreedy", "\"high\""));
        Check(m != null && m.Contains("epsilon"), "epsilon not a number: " + m);
        m = Refusal(ContractJson(4, "SquashedGaussian", null, box, 4));
        Check(m != null && m.Contains("does not fit"), "SquashedGaussian on an unbounded Box: " + m);
        m = Refusal(ContractJson(4, "DiagGaussian", null));
        Check(m != null && m.Contains("does not fit"), "DiagGaussian on Discrete: " + m);

        try { ActionDistribution.For(new DiscreteSpace(3), "Beta", null); throw new Exception("no exception"); }
        catch (ProtocolException e) { Check(e.Message.Contains("upgrade the client"), e.Message); }
        try { ActionDistribution.For(new DiscreteSpace(3), "MultiCategorical", null); throw new Exception("no exception"); }
        catch (SpaceException e) { Check(e.Message.Contains("does not fit"), e.Message); }
        Check(ActionDistribution.For(new BoxSpace(new[] { -1.0, -1.0 }, new[] { 1.0, 1.0 }, new[] { 2 })).Name == "DiagGaussian", "default for Box");
    }

    /// <summary>A local policy with fixed Q-values whose contract the test swaps, as a new version would.</summary>
    private sealed class FakeLocalPolicy : IContractPolicy
    {
        public PolicyContract Contract { get; set; }
        public long PolicyVersion { get { return Contract == null ? 0 : Contract.PolicyVersion; } }
        public int FlatObsSize { get { return 2; } }
        public int DistInputsSize { get { return 3; } }
        public void Compute(float[] flatObs, float[] distInputs) { distInputs[0] = 0f; distInputs[1] = 5f; distInputs[2] = 1f; }
    }

    private static void LocalModeSamplesWithTheContractOfThePolicyInUse()
    {
        var fake = new FakeServer { Distribution = "EpsilonGreedy" };
        var policy = new FakeLocalPolicy { Contract = PolicyContract.FromJson(ContractJson(1, "EpsilonGreedy", "0.0")) };
        var seen = new HashSet<long>();
        using (var client = new PolicyClient(new PolicyClientOptions
        {
            Address = "http://fake:1", Handler = fake, InitialBackoff = TimeSpan.FromMilliseconds(5), LocalPolicy = policy, Seed = 3,
        }))
        {
            string ep = client.StartEpisode();
            for (int t = 0; t < 40; t++) Check((long)client.GetAction(ep, new[] { 0f, 0f }) == 1, "epsilon 0 explored");
            client.LogAction(ep, new[] { 0f, 0f }, 2L);  // not greedy: impossible under epsilon 0
            policy.Contract = PolicyContract.FromJson(ContractJson(2, "EpsilonGreedy", "1.0"));
            for (int t = 0; t < 60; t++) seen.Add((long)client.GetAction(ep, new[] { 0f, 0f }));
            client.EndEpisode(ep, new[] { 0f, 0f });
            Check(client.Flush(TimeSpan.FromSeconds(10)), "flush timed out");

            // A version whose distribution this client does not know: refused, never replaced.
            policy.Contract = new PolicyContract { PolicyVersion = 3, Distribution = "Beta", ActionSpace = new DiscreteSpace(3) };
            string ep2 = client.StartEpisode();
            try
            {
                client.GetAction(ep2, new[] { 0f, 0f });
                throw new Exception("no exception for an unknown distribution");
            }
            catch (ProtocolException e)
            {
                Check(e.Message.Contains("policy version 3") && e.Message.Contains("upgrade the client"), e.Message);
            }
        }
        Check(seen.Count == 3, "epsilon 1 gave actions " + string.Join(",", seen));
        var chunk = (MsgMap)((List<object>)fake.Experience[0]["chunks"])[0];
        var logp = (NdArray)chunk["logp"];
        var versions = (NdArray)chunk["policy_versions"];
        Check(logp.Count == 101, logp.Count + " steps");
        for (int t = 0; t < 40; t++) Check(logp.GetDouble(t) == 0.0 && versions.GetLong(t) == 1, "greedy step " + t);
        Check(double.IsNegativeInfinity(logp.GetDouble(40)), "logged non-greedy action under epsilon 0: " + logp.GetDouble(40));
        for (int t = 41; t < 101; t++)
            Check(Math.Abs(logp.GetDouble(t) - Math.Log(1.0 / 3.0)) < 1e-6 && versions.GetLong(t) == 2, "uniform step " + t);
    }

    // -- LogAction's behaviour log-prob --------------------------------------------------------

    private static NdArray UploadedLogp(FakeServer fake, out NdArray actions, out NdArray versions)
    {
        Check(fake.Experience.Count == 1, fake.Experience.Count + " batches");
        var chunk = (MsgMap)((List<object>)fake.Experience[0]["chunks"])[0];
        actions = (NdArray)chunk["policy_actions"];
        versions = (NdArray)chunk["policy_versions"];
        return (NdArray)chunk["logp"];
    }

    private static void LoggedActionRecordsTheGivenLogp()
    {
        // Remote mode: the policy's evaluation (POST /v1/act) gives the action, dist inputs and
        // version; a given logp replaces only the log-prob.
        var fake = new FakeServer();
        using (var client = NewClient(fake))
        {
            string ep = client.StartEpisode();
            client.LogAction(ep, new[] { 0f, 0f }, 2L, logp: -1.25);
            client.LogAction(ep, new[] { 1f, 0f }, 1L);                // no logp: the policy's own
            client.LogAction(ep, new[] { 2f, 0f }, 0L, Math.Log(1.0)); // 0 (p = 1) is allowed
            client.LogAction(ep, new[] { 3f, 0f }, 2L, logp: null);
            client.EndEpisode(ep, new[] { 4f, 0f });
            Check(client.Flush(TimeSpan.FromSeconds(10)), "flush timed out");
        }
        NdArray actions, versions;
        var logp = UploadedLogp(fake, out actions, out versions);
        Check(logp.Count == 4, logp.Count + " steps");
        double[] want = { -1.25, FakeServer.EvaluatedLogp, 0.0, FakeServer.EvaluatedLogp };
        long[] wantActions = { 2, 1, 0, 2 };
        for (int t = 0; t < 4; t++)
        {
            Check(logp.GetDouble(t) == want[t], "step " + t + " recorded logp " + logp.GetDouble(t) + ", expected " + want[t]);
            Check(actions.GetLong(t) == wantActions[t], "step " + t + " policy action " + actions.GetLong(t));
            Check(versions.GetLong(t) == 7, "step " + t + " policy version " + versions.GetLong(t));
        }

        // Local mode: the same, with the log-prob the local policy would have recorded (-inf for
        // a non-greedy action under epsilon 0) replaced by the app's.
        fake = new FakeServer { Distribution = "EpsilonGreedy" };
        var policy = new FakeLocalPolicy { Contract = PolicyContract.FromJson(ContractJson(1, "EpsilonGreedy", "0.0")) };
        using (var client = new PolicyClient(new PolicyClientOptions
        {
            Address = "http://fake:1", Handler = fake, InitialBackoff = TimeSpan.FromMilliseconds(5), LocalPolicy = policy, Seed = 3,
        }))
        {
            string ep = client.StartEpisode();
            client.LogAction(ep, new[] { 0f, 0f }, 2L, Math.Log(1.0 / 3.0));
            client.LogAction(ep, new[] { 0f, 0f }, 2L);
            client.EndEpisode(ep, new[] { 0f, 0f });
            Check(client.Flush(TimeSpan.FromSeconds(10)), "flush timed out");
        }
        logp = UploadedLogp(fake, out actions, out versions);
        Check(logp.Count == 2, logp.Count + " local steps");
        Check(Math.Abs(logp.GetDouble(0) - Math.Log(1.0 / 3.0)) < 1e-6, "local step 0 recorded logp " + logp.GetDouble(0));
        Check(double.IsNegativeInfinity(logp.GetDouble(1)), "local step 1 (no logp) recorded " + logp.GetDouble(1));
        for (int t = 0; t < 2; t++)
            Check(actions.GetLong(t) == 2 && versions.GetLong(t) == 1, "local step " + t + " action/version");
    }

    private static void LoggedActionRefusesABadLogp()
    {
        var fake = new FakeServer();
        using (var client = NewClient(fake))
        {
            string ep = client.StartEpisode();
            var bad = new Dictionary<double, string>
            {
                { 0.5, "got 0.5" }, { double.NaN, "got NaN" }, { double.PositiveInfinity, "got Infinity" },
                { double.NegativeInfinity, "got -Infinity" }, { 1e-9, "got 1E-09" },
            };
            foreach (var kv in bad)
            {
                try
                {
                    client.LogAction(ep, new[] { 0f, 0f }, 1L, kv.Key);
                    throw new Exception("no exception for logp " + kv.Key);
                }
                catch (UsageException e)
                {
                    Check(!(e is SpaceException), "a SpaceException for logp " + kv.Key);
                    Check(e.Message.Contains("logp must be a finite log-probability (<= 0), " + kv.Value), e.Message);
                    Check(e.Message.Contains("Math.Log(p)"), "the message does not say how to fix it: " + e.Message);
                }
            }
            // Refused before anything was recorded: the episode goes on as if the calls had not been made.
            client.LogAction(ep, new[] { 0f, 0f }, 1L, -0.25);
            client.EndEpisode(ep, new[] { 1f, 0f });
            Check(client.Flush(TimeSpan.FromSeconds(10)), "flush timed out");
        }
        NdArray actions, versions;
        var logp = UploadedLogp(fake, out actions, out versions);
        Check(logp.Count == 1 && logp.GetDouble(0) == -0.25, logp.Count + " steps, logp " + logp.GetDouble(0));
    }

    public static int Main()
    {
        var tests = new Dictionary<string, Action>
        {
            { "chunks_are_cut_at_the_limit_and_chain", ChunksAreCutAtTheLimitAndChain },
            { "retries_reuse_the_batch_id", RetriesReuseTheBatchId },
            { "wrong_token_shows_the_servers_message", WrongTokenShowsTheServersMessage },
            { "bad_observation_names_the_space", BadObservationNamesTheSpace },
            { "contract_builds_its_named_distribution", ContractBuildsItsNamedDistribution },
            { "local_mode_samples_with_the_contract_of_the_policy_in_use", LocalModeSamplesWithTheContractOfThePolicyInUse },
            { "logged_action_records_the_given_logp", LoggedActionRecordsTheGivenLogp },
            { "logged_action_refuses_a_bad_logp", LoggedActionRefusesABadLogp },
        };
        int passed = 0, failed = 0;
        foreach (var t in tests)
        {
            try { t.Value(); Console.WriteLine("ok   " + t.Key); passed++; }
            catch (Exception e) { Console.WriteLine("FAIL " + t.Key + ": " + e); failed++; }
        }
        Console.WriteLine(passed + " passed, " + failed + " failed");
        return failed == 0 ? 0 : 1;
    }
}
