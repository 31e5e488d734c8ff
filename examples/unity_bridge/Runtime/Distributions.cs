// Action distributions for local inference, matching RLlib's torch ones (and
// clients/python/agentsdk_client/protocol/distributions.py; PROTOCOL.md section 3): the
// policy network outputs distribution inputs; these turn one row of them into a
// policy-form action and its log-probability, so the learner's importance ratios start
// at 1. tests/vectors/distributions.json pins every one of them (Tests/VectorRunner.cs).

using System;

namespace Agentsdk
{
    /// <summary>One sampled (or evaluated) policy-form action.</summary>
    public sealed class PolicySample
    {
        /// <summary>Integer policy actions (Categorical / MultiCategorical / EpsilonGreedy), else null.</summary>
        public long[] Ints;
        /// <summary>Raw float policy actions (DiagGaussian / SquashedGaussian), else null.</summary>
        public float[] Raw;
        public float Logp;
    }

    public abstract class ActionDistribution
    {
        /// <summary>The distribution names this client knows (protocol 1.1).</summary>
        public static readonly string[] Known = { "Categorical", "MultiCategorical", "DiagGaussian", "SquashedGaussian", "EpsilonGreedy" };

        public abstract string Name { get; }

        public abstract PolicySample Sample(float[] inputs, Random rng, bool deterministic);

        /// <summary>Log-probability of a policy-form action (ints or raw floats).</summary>
        public abstract float Logp(float[] inputs, long[] ints, float[] raw);

        /// <summary>The distribution RLlib's default catalog picks for this action space (PPO, APPO, IMPALA).</summary>
        public static ActionDistribution For(Space space)
        {
            return For(space, DefaultName(space), null);
        }

        /// <summary>The name of RLlib's default distribution for this action space.</summary>
        public static string DefaultName(Space space)
        {
            if (space is DiscreteSpace) return "Categorical";
            if (space is MultiDiscreteSpace || space is MultiBinarySpace) return "MultiCategorical";
            if (space is BoxSpace) return "DiagGaussian";
            throw new SpaceException("no action distribution for " + space);
        }

        /// <summary>
        /// The named distribution (a contract's or /v1/info's `distribution`; null or "": the
        /// default) for this action space. epsilon: the contract's, needed by EpsilonGreedy.
        /// Throws ProtocolException for a name this client does not know (or EpsilonGreedy
        /// without epsilon), SpaceException when the distribution does not fit the space.
        /// </summary>
        public static ActionDistribution For(Space space, string name, double? epsilon)
        {
            if (space == null) throw new ArgumentNullException("space");
            if (string.IsNullOrEmpty(name)) name = DefaultName(space);
            var box = space as BoxSpace;
            bool fits;
            switch (name)
            {
                case "Categorical": fits = space is DiscreteSpace; break;
                case "MultiCategorical": fits = space is MultiDiscreteSpace || space is MultiBinarySpace; break;
                case "DiagGaussian": fits = box != null; break;
                case "SquashedGaussian": fits = box != null && box.Bounded; break;
                case "EpsilonGreedy": fits = space is DiscreteSpace; break;
                default:
                    throw new ProtocolException("unknown action distribution '" + name + "'; this client knows "
                                                + string.Join(", ", Known) + "; upgrade the client");
            }
            if (!fits)
                throw new SpaceException("distribution " + name + " does not fit action space " + space
                                         + (name == "SquashedGaussian" && box != null ? " (SquashedGaussian needs every Box bound finite)" : ""));
            switch (name)
            {
                case "Categorical": return new MultiCategorical(new[] { ((DiscreteSpace)space).N }, "Categorical");
                case "MultiCategorical":
                    var md = space as MultiDiscreteSpace;
                    if (md != null) return new MultiCategorical(md.Nvec, "MultiCategorical");
                    var nvec = new long[space.FlatSize];
                    for (int i = 0; i < nvec.Length; i++) nvec[i] = 2;
                    return new MultiCategorical(nvec, "MultiCategorical");
                case "DiagGaussian": return new DiagGaussian(space.FlatSize);
                case "SquashedGaussian": return new SquashedGaussian(space.FlatSize);
                default:
                    if (!epsilon.HasValue)
                        throw new ProtocolException("EpsilonGreedy needs the policy's epsilon (the contract's 'epsilon'), and none was given");
                    return new EpsilonGreedy((int)((DiscreteSpace)space).N, epsilon.Value);
            }
        }

        internal static double Uniform(Random rng)
        {
            double u;
            do { u = rng.NextDouble(); } while (u <= 0.0);
            return u;
        }

        internal static double Normal(Random rng)
        {
            return Math.Sqrt(-2.0 * Math.Log(Uniform(rng))) * Math.Cos(2.0 * Math.PI * rng.NextDouble());
        }

        /// <summary>log(1 + x), accurate for small x (Math has no Log1p on .NET Framework).</summary>
        internal static double Log1p(double x)
        {
            double u = 1.0 + x;
            if (u == 1.0) return x;
            if (double.IsInfinity(u)) return Math.Log(u);
            return Math.Log(u) * x / (u - 1.0);
        }

        /// <summary>log(1 + exp(x)), without overflow (numpy's logaddexp(0, x)).</summary>
        internal static double Softplus(double x)
        {
            return Math.Max(x, 0.0) + Log1p(Math.Exp(-Math.Abs(x)));
        }

        /// <summary>atanh(x) for |x| &lt; 1 (Math has no Atanh on .NET Framework).</summary>
        internal static double Atanh(double x)
        {
            return 0.5 * Log1p(2.0 * x / (1.0 - x));
        }
    }

    /// <summary>Independent categoricals over consecutive slices of the logits (one slice: Categorical).</summary>
    public sealed class MultiCategorical : ActionDistribution
    {
        private readonly long[] _nvec;
        private readonly string _name;

        public MultiCategorical(long[] nvec, string name)
        {
            _nvec = (long[])nvec.Clone();
            _name = name;
        }

        public override string Name { get { return _name; } }

        public override PolicySample Sample(float[] inputs, Random rng, bool deterministic)
        {
            var ints = new long[_nvec.Length];
            int o = 0;
            for (int k = 0; k < _nvec.Length; k++)
            {
                int n = (int)_nvec[k];
                int best = 0;
                double bestScore = double.NegativeInfinity;
                for (int i = 0; i < n; i++)
                {
                    double score = inputs[o + i];
                    // Gumbel-max: argmax(logit + Gumbel noise) is a categorical sample.
                    if (!deterministic) score += -Math.Log(-Math.Log(Uniform(rng)));
                    if (score > bestScore) { bestScore = score; best = i; }
                }
                ints[k] = best;
                o += n;
            }
            return new PolicySample { Ints = ints, Logp = Logp(inputs, ints, null) };
        }

        public override float Logp(float[] inputs, long[] ints, float[] raw)
        {
            double total = 0;
            int o = 0;
            for (int k = 0; k < _nvec.Length; k++)
            {
                int n = (int)_nvec[k];
                double max = double.NegativeInfinity;
                for (int i = 0; i < n; i++) max = Math.Max(max, inputs[o + i]);
                double sum = 0;
                for (int i = 0; i < n; i++) sum += Math.Exp(inputs[o + i] - max);
                total += inputs[o + (int)ints[k]] - max - Math.Log(sum);
                o += n;
            }
            return (float)total;
        }
    }

    /// <summary>Diagonal Gaussian: inputs are mean then log_std, each `size` wide.</summary>
    public sealed class DiagGaussian : ActionDistribution
    {
        private static readonly double HalfLog2Pi = 0.5 * Math.Log(2.0 * Math.PI);
        private readonly int _size;

        public DiagGaussian(int size) { _size = size; }

        public override string Name { get { return "DiagGaussian"; } }

        public override PolicySample Sample(float[] inputs, Random rng, bool deterministic)
        {
            var raw = new float[_size];
            for (int i = 0; i < _size; i++)
            {
                double mean = inputs[i], std = Math.Exp(inputs[_size + i]);
                raw[i] = (float)(deterministic ? mean : mean + std * Normal(rng));
            }
            return new PolicySample { Raw = raw, Logp = Logp(inputs, null, raw) };
        }

        public override float Logp(float[] inputs, long[] ints, float[] raw)
        {
            double total = 0;
            for (int i = 0; i < _size; i++)
            {
                double logStd = inputs[_size + i];
                double z = (raw[i] - inputs[i]) / Math.Exp(logStd);
                total += -0.5 * z * z - logStd - HalfLog2Pi;
            }
            return (float)total;
        }
    }

    /// <summary>
    /// SAC on a bounded Box: a Gaussian squashed by tanh into [-1, 1] (RLlib's
    /// TorchSquashedGaussian). Inputs are mean then log_std, each `size` wide; log_std is
    /// clipped to [-5, 2]. The policy-form action is the squashed sample a = tanh(x).
    /// </summary>
    public sealed class SquashedGaussian : ActionDistribution
    {
        public const double MinLogStd = -5.0, MaxLogStd = 2.0;
        /// <summary>Scoring a given action: it is clipped this far inside (-1, 1) before atanh.</summary>
        public const double Edge = 1e-6;
        private static readonly double HalfLog2Pi = 0.5 * Math.Log(2.0 * Math.PI);
        private static readonly double Log2 = Math.Log(2.0);
        private readonly int _size;

        public SquashedGaussian(int size) { _size = size; }

        public override string Name { get { return "SquashedGaussian"; } }

        public override PolicySample Sample(float[] inputs, Random rng, bool deterministic)
        {
            var raw = new float[_size];
            for (int i = 0; i < _size; i++)
            {
                double mean = inputs[i];
                double x = deterministic ? mean : mean + Math.Exp(ClipLogStd(inputs[_size + i])) * Normal(rng);
                raw[i] = (float)Math.Tanh(x);
            }
            return new PolicySample { Raw = raw, Logp = Logp(inputs, null, raw) };
        }

        public override float Logp(float[] inputs, long[] ints, float[] raw)
        {
            double total = 0;
            for (int i = 0; i < _size; i++)
            {
                double mean = inputs[i];
                double logStd = ClipLogStd(inputs[_size + i]);
                double x = Atanh(Math.Min(1.0 - Edge, Math.Max(-1.0 + Edge, (double)raw[i])));
                double z = (x - mean) / Math.Exp(logStd);
                double normal = -0.5 * z * z - logStd - HalfLog2Pi;
                // log(1 - tanh(x)^2) in RLlib's numerically stable form.
                double jacobian = 2.0 * (Log2 - x - Softplus(-2.0 * x));
                total += normal - jacobian;
            }
            return (float)total;
        }

        private static double ClipLogStd(double logStd) { return Math.Min(MaxLogStd, Math.Max(MinLogStd, logStd)); }
    }

    /// <summary>
    /// DQN on Discrete: inputs are the n Q-values; with probability epsilon the action is
    /// uniform over 0..n-1, else the first index of the largest Q-value (deterministic:
    /// always that one). logp(a) = log(epsilon / n + (1 - epsilon) [a is greedy]).
    /// </summary>
    public sealed class EpsilonGreedy : ActionDistribution
    {
        private readonly int _n;

        public EpsilonGreedy(int n, double epsilon)
        {
            if (n < 1) throw new SpaceException("EpsilonGreedy needs at least one action, got n = " + n);
            if (!(epsilon >= 0.0 && epsilon <= 1.0))
                throw new ProtocolException("EpsilonGreedy epsilon must lie in [0, 1], got " + epsilon.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
            _n = n;
            Epsilon = epsilon;
        }

        /// <summary>The exploration rate of the policy version.</summary>
        public double Epsilon { get; private set; }

        public override string Name { get { return "EpsilonGreedy"; } }

        public override PolicySample Sample(float[] inputs, Random rng, bool deterministic)
        {
            long action = Greedy(inputs);
            if (!deterministic && Epsilon > 0.0 && rng.NextDouble() < Epsilon) action = rng.Next(_n);
            var ints = new[] { action };
            return new PolicySample { Ints = ints, Logp = Logp(inputs, ints, null) };
        }

        public override float Logp(float[] inputs, long[] ints, float[] raw)
        {
            double p = Epsilon / _n + (ints[0] == Greedy(inputs) ? 1.0 - Epsilon : 0.0);
            return (float)Math.Log(p);
        }

        /// <summary>The first index of the largest Q-value.</summary>
        private int Greedy(float[] inputs)
        {
            int best = 0;
            for (int i = 1; i < _n; i++) if (inputs[i] > inputs[best]) best = i;
            return best;
        }
    }
}
