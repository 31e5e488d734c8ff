// Action distributions for local inference, matching RLlib's torch ones (and
// clients/python/agentsdk_client/_distributions.py): the policy network outputs
// distribution inputs; these turn one row of them into a policy-form action and its
// log-probability, so the learner's importance ratios start at 1.

using System;

namespace Agentsdk
{
    /// <summary>One sampled (or evaluated) policy-form action.</summary>
    public sealed class PolicySample
    {
        /// <summary>Integer policy actions (Categorical / MultiCategorical), else null.</summary>
        public long[] Ints;
        /// <summary>Raw float policy actions (DiagGaussian), else null.</summary>
        public float[] Raw;
        public float Logp;
    }

    public abstract class ActionDistribution
    {
        public abstract string Name { get; }

        public abstract PolicySample Sample(float[] inputs, Random rng, bool deterministic);

        /// <summary>Log-probability of a policy-form action (ints or raw floats).</summary>
        public abstract float Logp(float[] inputs, long[] ints, float[] raw);

        /// <summary>The distribution RLlib's default catalog picks for this action space.</summary>
        public static ActionDistribution For(Space space)
        {
            if (space is DiscreteSpace) return new MultiCategorical(new[] { ((DiscreteSpace)space).N }, "Categorical");
            var md = space as MultiDiscreteSpace;
            if (md != null) return new MultiCategorical(md.Nvec, "MultiCategorical");
            var mb = space as MultiBinarySpace;
            if (mb != null)
            {
                var nvec = new long[mb.FlatSize];
                for (int i = 0; i < nvec.Length; i++) nvec[i] = 2;
                return new MultiCategorical(nvec, "MultiCategorical");
            }
            if (space is BoxSpace) return new DiagGaussian(space.FlatSize);
            throw new SpaceException("no action distribution for " + space);
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

        private static double Uniform(Random rng)
        {
            double u;
            do { u = rng.NextDouble(); } while (u <= 0.0);
            return u;
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

        private static double Normal(Random rng)
        {
            double u1;
            do { u1 = rng.NextDouble(); } while (u1 <= 0.0);
            return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * rng.NextDouble());
        }
    }
}
