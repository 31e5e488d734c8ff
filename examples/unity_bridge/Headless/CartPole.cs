// CartPole-v1 in C#, step for step as gymnasium's classic_control/cartpole.py:
// same constants, explicit Euler integration, termination at |x| > 2.4 or
// |theta| > 12 degrees, reward 1 per step (the terminating one included), and the
// TimeLimit wrapper's truncation at 500 steps. The state is double; observations are
// float32, as gymnasium returns them.

using System;

namespace Agentsdk.Headless
{
    public sealed class CartPole
    {
        public const double Gravity = 9.8;
        public const double MassCart = 1.0;
        public const double MassPole = 0.1;
        public const double TotalMass = MassPole + MassCart;
        public const double Length = 0.5;  // half the pole's length
        public const double PoleMassLength = MassPole * Length;
        public const double ForceMag = 10.0;
        public const double Tau = 0.02;    // seconds between state updates
        public const double XThreshold = 2.4;
        public const double ThetaThresholdRadians = 12 * 2 * Math.PI / 360;
        public const int MaxEpisodeSteps = 500;

        private readonly Random _rng;
        private double _x, _xDot, _theta, _thetaDot;
        private int _elapsed;

        public CartPole(int seed) { _rng = new Random(seed); }

        public float[] Reset()
        {
            _x = Uniform();
            _xDot = Uniform();
            _theta = Uniform();
            _thetaDot = Uniform();
            _elapsed = 0;
            return Observation();
        }

        /// <summary>Apply action 0 (push left) or 1 (push right).</summary>
        public float[] Step(long action, out double reward, out bool terminated, out bool truncated)
        {
            if (action != 0 && action != 1) throw new ArgumentOutOfRangeException("action", action, "CartPole actions are 0 or 1");
            double force = action == 1 ? ForceMag : -ForceMag;
            double cos = Math.Cos(_theta), sin = Math.Sin(_theta);
            double temp = (force + PoleMassLength * _thetaDot * _thetaDot * sin) / TotalMass;
            double thetaAcc = (Gravity * sin - cos * temp) / (Length * (4.0 / 3.0 - MassPole * cos * cos / TotalMass));
            double xAcc = temp - PoleMassLength * thetaAcc * cos / TotalMass;
            _x += Tau * _xDot;
            _xDot += Tau * xAcc;
            _theta += Tau * _thetaDot;
            _thetaDot += Tau * thetaAcc;
            _elapsed++;
            terminated = _x < -XThreshold || _x > XThreshold || _theta < -ThetaThresholdRadians || _theta > ThetaThresholdRadians;
            truncated = !terminated && _elapsed >= MaxEpisodeSteps;
            reward = 1.0;
            return Observation();
        }

        private float[] Observation() { return new[] { (float)_x, (float)_xDot, (float)_theta, (float)_thetaDot }; }

        private double Uniform() { return -0.05 + 0.1 * _rng.NextDouble(); }
    }
}
