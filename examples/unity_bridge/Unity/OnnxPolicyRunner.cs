// Local inference in Unity: runs the policy agentsdk exported (policy.onnx) with Unity's
// Inference Engine (formerly Sentis) and reads the policy's contract (spaces, version,
// action distribution and, for DQN's EpsilonGreedy, epsilon) so that sampled actions and
// log-probs match the server's. The distribution always comes from the contract of the
// model in use (PolicyContract.ActionDistribution): a reload with a newer version takes
// its distribution too, and one this client does not know is refused when the contract is read.
//
// Set-up: import the exported .onnx into Assets (Unity makes it a ModelAsset) and assign
// it to `model`. The contract is read from, in this order:
//   1. `contractJson`: a TextAsset holding the contract JSON (GET /v1/policy's `contract`,
//      or the ONNX metadata value `agentsdk_contract`);
//   2. `onnxInStreamingAssets`: the same .onnx copied under Assets/StreamingAssets; its
//      `agentsdk_contract` metadata is read directly (PolicyContract.FromOnnx).
// (The Inference Engine importer does not keep ONNX metadata in player builds, hence the
// two sources.)
//
// Package: com.unity.ai.inference (namespace Unity.InferenceEngine, 2.2+). For Sentis
// 2.1 (namespace Unity.Sentis, same API) add the scripting define AGENTSDK_SENTIS.
// Everything that needs Unity sits behind UNITY_5_3_OR_NEWER so that Mono's mcs still
// compiles this folder (build.sh does, to keep it honest).

#if UNITY_5_3_OR_NEWER
using System;
using System.IO;
using UnityEngine;
#if AGENTSDK_SENTIS
using Unity.Sentis;
#else
using Unity.InferenceEngine;
#endif

namespace Agentsdk.Unity
{
    [DisallowMultipleComponent]
    public sealed class OnnxPolicyRunner : MonoBehaviour, IContractPolicy
    {
        [Tooltip("The policy.onnx exported by agentsdk, imported as a model asset.")]
        [SerializeField] private ModelAsset model;
        [Tooltip("The policy contract JSON (optional when onnxInStreamingAssets is set).")]
        [SerializeField] private TextAsset contractJson;
        [Tooltip("Path of the same .onnx under StreamingAssets, to read its embedded contract.")]
        [SerializeField] private string onnxInStreamingAssets = "";
        [Tooltip("CPU is fastest for the small networks policies use.")]
        [SerializeField] private BackendType backend = BackendType.CPU;
        [Tooltip("Seed for sampling in Act (0: time-based).")]
        [SerializeField] private int seed;

        private Worker _worker;
        private System.Random _rng;
        private float[] _scratch;

        public PolicyContract Contract { get; private set; }
        public long PolicyVersion { get { return Contract == null ? 0 : Contract.PolicyVersion; } }
        public int FlatObsSize { get { return Contract.FlatObsSize; } }
        public int DistInputsSize { get { return Contract.DistInputsSize; } }

        private void Awake()
        {
            if (Contract == null) Load();
        }

        /// <summary>Read the contract and build the worker (Awake does this; call it to reload).</summary>
        public void Load()
        {
            if (model == null) throw new UsageException("OnnxPolicyRunner on '" + name + "' has no model: assign the imported policy.onnx");
            PolicyContract contract;
            // FromJson / FromOnnx build the contract's distribution (with its epsilon) and refuse an unknown one.
            if (contractJson != null) contract = PolicyContract.FromJson(contractJson.text);
            else if (!string.IsNullOrEmpty(onnxInStreamingAssets))
                contract = PolicyContract.FromOnnx(File.ReadAllBytes(Path.Combine(Application.streamingAssetsPath, onnxInStreamingAssets)));
            else throw new UsageException("OnnxPolicyRunner on '" + name + "' needs the policy contract: assign contractJson or onnxInStreamingAssets");
            var worker = new Worker(ModelLoader.Load(model), backend);
            // PolicyClient reads Compute, PolicyVersion and Contract under lock(this): swap them together.
            lock (this)
            {
                DisposeWorker();
                _worker = worker;
                Contract = contract;
                if (_rng == null) _rng = seed != 0 ? new System.Random(seed) : new System.Random();
                _scratch = new float[contract.DistInputsSize];
            }
        }

        /// <summary>flatObs (flat_obs_size floats) -> distribution inputs (dist_inputs_size floats).</summary>
        public void Compute(float[] flatObs, float[] distInputs)
        {
            if (_worker == null) Load();
            if (flatObs.Length != Contract.FlatObsSize)
                throw new UsageException("the policy takes " + Contract.FlatObsSize + " observation values, got " + flatObs.Length);
            using (var input = new Tensor<float>(new TensorShape(1, flatObs.Length), flatObs))
            {
                _worker.Schedule(input);
                var output = _worker.PeekOutput(Contract.OutputName) as Tensor<float>;
                float[] values = output.DownloadToArray();
                Array.Copy(values, distInputs, Contract.DistInputsSize);
            }
        }

        /// <summary>
        /// Deployment without a server: an observation (any form the observation space
        /// accepts) -> the env action (Discrete: long; Box: NdArray; see ActionValue).
        /// </summary>
        public object Act(object observation, bool deterministic = true)
        {
            if (_worker == null) Load();
            lock (this)
            {
                var contract = Contract;  // the model in use, with its own distribution
                var obs = contract.ObservationSpace.Coerce(observation, "observation");
                Compute(contract.ObservationSpace.Flatten(obs), _scratch);
                var s = contract.ActionDistribution.Sample(_scratch, _rng, deterministic);
                return PolicyForm.ToEnv(contract.ActionSpace, s.Ints, s.Raw);
            }
        }

        private void DisposeWorker()
        {
            if (_worker != null) { _worker.Dispose(); _worker = null; }
        }

        private void OnDestroy() { DisposeWorker(); }
    }
}
#endif
