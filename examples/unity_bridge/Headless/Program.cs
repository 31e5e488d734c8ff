// The headless C# app: CartPole-v1 played through the C# PolicyClient in remote mode,
// training a policy on `agentsdk serve --env CartPole-v1`.
//
//   mono bin/app.exe --address http://127.0.0.1:9900 --steps 50000 [--token T] [--seed 0]
//                    [--stop-at-return 150] [--protocol 1.1] [--quiet]
//
// Prints one line per episode, a progress line every --progress-every steps, and at the
// end one machine-readable line:
//   RESULT steps=<n> episodes=<k> mean_return_last20=<x> steps_per_s=<y> uploaded=<u> ...
// Exit codes: 0 done, 1 the uploads did not finish, 2 an agentsdk error (the message
// is the server's), 64 bad arguments.

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;

namespace Agentsdk.Headless
{
    public static class Program
    {
        private const string Usage =
            "usage: app.exe --address URL --steps N [--token T] [--seed S] [--stop-at-return R]\n" +
            "               [--protocol X.Y] [--progress-every K] [--quiet] [--check-policy]\n" +
            "  --address URL         the agentsdk server (default http://127.0.0.1:9900, env AGENTSDK_ADDRESS)\n" +
            "  --steps N             env steps to play at most (default 50000)\n" +
            "  --token T             bearer token when the server has one (env AGENTSDK_TOKEN)\n" +
            "  --seed S              seed of the CartPole start states (default 0)\n" +
            "  --stop-at-return R    stop early once the last 20 episodes average >= R (default: off)\n" +
            "  --protocol X.Y        Agentsdk-Protocol header to send (default 1.1; for handshake tests)\n" +
            "  --progress-every K    print a progress line every K steps (default 5000)\n" +
            "  --quiet               no per-episode lines\n" +
            "  --check-policy        afterwards, download GET /v1/policy and check the contract embedded in the ONNX\n" +
            "example: mono bin/app.exe --address http://127.0.0.1:9900 --steps 100000 --stop-at-return 150";

        public static int Main(string[] args)
        {
            var opt = new PolicyClientOptions
            {
                Address = Environment.GetEnvironmentVariable("AGENTSDK_ADDRESS") ?? "http://127.0.0.1:9900",
                Token = Environment.GetEnvironmentVariable("AGENTSDK_TOKEN"),
                ClientId = "headless-cartpole",
            };
            long budget = 50000;
            int seed = 0, progressEvery = 5000;
            double stopAt = double.NaN;
            bool quiet = false, checkPolicy = false;
            try
            {
                for (int i = 0; i < args.Length; i++)
                {
                    switch (args[i])
                    {
                        case "--address": opt.Address = Arg(args, ref i); break;
                        case "--token": opt.Token = Arg(args, ref i); break;
                        case "--steps": budget = long.Parse(Arg(args, ref i), CultureInfo.InvariantCulture); break;
                        case "--seed": seed = int.Parse(Arg(args, ref i), CultureInfo.InvariantCulture); break;
                        case "--stop-at-return": stopAt = double.Parse(Arg(args, ref i), CultureInfo.InvariantCulture); break;
                        case "--protocol": opt.ProtocolVersion = Arg(args, ref i); break;
                        case "--progress-every": progressEvery = int.Parse(Arg(args, ref i), CultureInfo.InvariantCulture); break;
                        case "--quiet": quiet = true; break;
                        case "--check-policy": checkPolicy = true; break;
                        case "-h": case "--help": Console.WriteLine(Usage); return 0;
                        default: throw new FormatException("unknown argument '" + args[i] + "'");
                    }
                }
                if (budget < 1) throw new FormatException("--steps must be at least 1");
            }
            catch (FormatException e)
            {
                Console.Error.WriteLine("error: " + e.Message + "\n" + Usage);
                return 64;
            }

            try
            {
                using (var client = new PolicyClient(opt))
                {
                    int rc = Play(client, budget, seed, stopAt, progressEvery, quiet);
                    if (rc == 0 && checkPolicy) CheckPolicy(client);
                    return rc;
                }
            }
            catch (AgentsdkException e)
            {
                Console.Error.WriteLine("agentsdk error (" + e.GetType().Name + "): " + e.Message);
                return 2;
            }
        }

        /// <summary>GET /v1/policy; the contract read from the ONNX bytes must match the one beside them.</summary>
        private static void CheckPolicy(PolicyClient client)
        {
            var download = client.GetPolicy();
            if (download == null || download.Onnx == null) throw new ProtocolException("GET /v1/policy returned no model");
            var embedded = PolicyContract.FromOnnx(download.Onnx);
            var beside = PolicyContract.FromMap(download.Contract);
            var info = client.Connect();
            bool same = embedded.PolicyVersion == beside.PolicyVersion
                        && Same(embedded.ObservationSpace, beside.ObservationSpace) && Same(embedded.ActionSpace, beside.ActionSpace)
                        && Same(embedded.ObservationSpace, info.ObservationSpace) && Same(embedded.ActionSpace, info.ActionSpace)
                        && embedded.Distribution == beside.Distribution && embedded.DistInputsSize == beside.DistInputsSize;
            Console.WriteLine("POLICY version=" + download.PolicyVersion + " etag=" + download.ETag + " onnx_bytes=" + download.Onnx.Length
                              + " contract=" + (same ? "ok" : "MISMATCH") + " distribution=" + embedded.Distribution
                              + " flat_obs_size=" + embedded.FlatObsSize + " dist_inputs_size=" + embedded.DistInputsSize
                              + " opset=" + embedded.Opset + " input=" + embedded.InputName + " output=" + embedded.OutputName);
            if (!same) throw new ProtocolException("the contract embedded in the ONNX model differs from the one GET /v1/policy sent beside it");
            if (client.GetPolicy(download.ETag) != null) throw new ProtocolException("GET /v1/policy with If-None-Match of the current ETag did not answer 304");
        }

        private static bool Same(Space a, Space b)
        {
            return Convert.ToBase64String(MsgPack.Encode(a.ToSpec())) == Convert.ToBase64String(MsgPack.Encode(b.ToSpec()));
        }

        private static string Arg(string[] args, ref int i)
        {
            if (i + 1 >= args.Length) throw new FormatException(args[i] + " needs a value");
            return args[++i];
        }

        private static int Play(PolicyClient client, long budget, int seed, double stopAt, int progressEvery, bool quiet)
        {
            var info = client.Connect();
            Console.WriteLine("connected: protocol " + info.Protocol + ", server " + info.ServerVersion + ", " + info.Algorithm
                              + ", policy version " + info.PolicyVersion + ", observations " + info.ObservationSpace
                              + ", actions " + info.ActionSpace);
            var box = info.ObservationSpace as BoxSpace;
            var act = info.ActionSpace as DiscreteSpace;
            if (box == null || box.FlatSize != 4 || act == null || act.N != 2)
                throw new UsageException("this app plays CartPole-v1 (Box of 4 observations, Discrete(2) actions); the server announced "
                                         + info.ObservationSpace + " and " + info.ActionSpace + ": start it with --env CartPole-v1");

            var env = new CartPole(seed);
            var returns = new List<double>();
            var latencies = new List<double>((int)Math.Min(budget, 1 << 22));
            var watch = Stopwatch.StartNew();
            var call = new Stopwatch();
            long steps = 0;
            bool stop = false;
            while (!stop)
            {
                string episode = client.StartEpisode();
                float[] obs = env.Reset();
                double episodeReturn = 0;
                while (true)
                {
                    call.Restart();
                    long action = (long)client.GetAction(episode, obs);
                    latencies.Add(call.Elapsed.TotalMilliseconds * 1000.0);
                    double reward;
                    bool terminated, truncated;
                    obs = env.Step(action, out reward, out terminated, out truncated);
                    client.LogReturns(episode, reward);
                    episodeReturn += reward;
                    steps++;
                    if (progressEvery > 0 && steps % progressEvery == 0)
                        Console.WriteLine("progress steps=" + steps + " episodes=" + returns.Count + " mean_return_last20="
                                          + F(MeanLast(returns, 20)) + " policy_version=" + client.LastPolicyVersion
                                          + " steps_per_s=" + F(steps / watch.Elapsed.TotalSeconds));
                    if (terminated || truncated)
                    {
                        client.EndEpisode(episode, obs, truncated: !terminated);
                        returns.Add(episodeReturn);
                        if (!quiet)
                            Console.WriteLine("episode " + returns.Count + " return " + F(episodeReturn) + " steps " + steps
                                              + " policy_version " + client.LastPolicyVersion);
                        if (!double.IsNaN(stopAt) && returns.Count >= 20 && MeanLast(returns, 20) >= stopAt) stop = true;
                        break;
                    }
                    if (steps >= budget)
                    {
                        // Out of budget mid-episode: end it as a time-limit cut, so every step is uploaded.
                        client.EndEpisode(episode, obs, truncated: true);
                        stop = true;
                        break;
                    }
                }
                if (steps >= budget) stop = true;
            }
            double playSeconds = watch.Elapsed.TotalSeconds;
            bool flushed = client.Flush(TimeSpan.FromSeconds(120));
            latencies.Sort();
            Console.WriteLine("RESULT steps=" + steps + " episodes=" + returns.Count + " mean_return_last20=" + F(MeanLast(returns, 20))
                              + " steps_per_s=" + F(steps / playSeconds) + " uploaded=" + client.StepsUploaded + " dropped=" + client.StepsDropped
                              + " policy_version=" + client.LastPolicyVersion + " get_action_p50_us=" + F(Percentile(latencies, 0.50))
                              + " get_action_p99_us=" + F(Percentile(latencies, 0.99)) + " flushed=" + (flushed ? "true" : "false"));
            if (!flushed)
            {
                Console.Error.WriteLine("error: uploads did not finish within 120 s (uploaded " + client.StepsUploaded + " of " + steps + " steps)");
                return 1;
            }
            return 0;
        }

        private static double MeanLast(List<double> xs, int n)
        {
            if (xs.Count == 0) return 0;
            return xs.Skip(Math.Max(0, xs.Count - n)).Average();
        }

        private static double Percentile(List<double> sorted, double q)
        {
            if (sorted.Count == 0) return 0;
            return sorted[Math.Min(sorted.Count - 1, (int)(q * sorted.Count))];
        }

        private static string F(double x) { return x.ToString("0.##", CultureInfo.InvariantCulture); }
    }
}
