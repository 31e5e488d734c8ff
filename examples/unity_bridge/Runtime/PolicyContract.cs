// The policy's contract (PROTOCOL.md "The ONNX model"): what the exported network
// expects and emits. It travels as JSON in the ONNX metadata property
// `agentsdk_contract`, and as a map beside the model in GET /v1/policy.
//
// ReadFromOnnx scans the ONNX protobuf for ModelProto.metadata_props (field 14) without
// any protobuf library, so the contract can be read anywhere: in a headless app, in
// Unity at runtime from the .onnx bytes (StreamingAssets, a download), or in the Editor.

using System;
using System.Collections.Generic;
using System.Text;

namespace Agentsdk
{
    public sealed class PolicyContract
    {
        public const string MetadataKey = "agentsdk_contract";

        public string Protocol;
        public long PolicyVersion;
        public string Algorithm;
        public Space ObservationSpace;
        public Space ActionSpace;
        public string Distribution;
        public int DistInputsSize;
        public int FlatObsSize;
        public long Opset;
        public string InputName = "obs";
        public string OutputName = "dist_inputs";
        /// <summary>EpsilonGreedy only (protocol 1.1): the exploration rate this policy version acts with.</summary>
        public double? Epsilon;

        private ActionDistribution _actionDistribution;

        /// <summary>
        /// The distribution this policy's actions are sampled with (the contract's
        /// `distribution`, with its `epsilon`), built and checked when the contract was read.
        /// </summary>
        public ActionDistribution ActionDistribution
        {
            get
            {
                if (_actionDistribution == null) _actionDistribution = Agentsdk.ActionDistribution.For(ActionSpace, Distribution, Epsilon);
                return _actionDistribution;
            }
        }

        /// <summary>Parse the contract JSON (the metadata value).</summary>
        public static PolicyContract FromJson(string json)
        {
            object parsed;
            try { parsed = Json.Parse(json); }
            catch (FormatException e) { throw new ProtocolException("the policy contract is not valid JSON: " + e.Message, e); }
            return FromMap(parsed as MsgMap);
        }

        /// <summary>From a decoded map (the JSON, or the `contract` map of GET /v1/policy).</summary>
        public static PolicyContract FromMap(MsgMap m)
        {
            if (m == null) throw new ProtocolException("the policy contract must be a map");
            var c = new PolicyContract
            {
                Protocol = m.Get("protocol") as string ?? "",
                PolicyVersion = ServerInfo.AsLong(m.Get("policy_version"), 0),
                Algorithm = m.Get("algorithm") as string ?? "",
                ObservationSpace = Space.FromSpec(Space.SpecFromJson(m.Get("observation_space")), "contract.observation_space", 0),
                ActionSpace = Space.FromSpec(Space.SpecFromJson(m.Get("action_space")), "contract.action_space", 0),
                Distribution = m.Get("distribution") as string ?? "",
                DistInputsSize = (int)ServerInfo.AsLong(m.Get("dist_inputs_size"), 0),
                FlatObsSize = (int)ServerInfo.AsLong(m.Get("flat_obs_size"), 0),
                Opset = ServerInfo.AsLong(m.Get("opset"), 0),
                InputName = m.Get("input_name") as string ?? "obs",
                OutputName = m.Get("output_name") as string ?? "dist_inputs",
                Epsilon = ReadEpsilon(m.Get("epsilon")),
            };
            string major = c.Protocol.Split('.')[0];
            if (major != PolicyClient.Protocol.Split('.')[0])
                throw new VersionMismatchException("the policy was exported for protocol " + c.Protocol + ", this client speaks " + PolicyClient.Protocol);
            if (c.FlatObsSize != c.ObservationSpace.FlatSize)
                throw new ProtocolException("contract says flat_obs_size " + c.FlatObsSize + " but its observation space " + c.ObservationSpace
                                            + " flattens to " + c.ObservationSpace.FlatSize);
            if (c.DistInputsSize != PolicyForm.DistInputsSize(c.ActionSpace))
                throw new ProtocolException("contract says dist_inputs_size " + c.DistInputsSize + " but its action space " + c.ActionSpace
                                            + " needs " + PolicyForm.DistInputsSize(c.ActionSpace));
            if (c.Distribution == "")
                throw new ProtocolException("the policy contract names no distribution (field 'distribution')");
            try
            {
                // The named one, or a clear refusal: never another distribution in its place.
                c._actionDistribution = Agentsdk.ActionDistribution.For(c.ActionSpace, c.Distribution, c.Epsilon);
            }
            catch (SpaceException e)
            {
                throw new ProtocolException("policy version " + c.PolicyVersion + " cannot be acted on locally: " + e.Message, e);
            }
            catch (ProtocolException e)
            {
                throw new ProtocolException("policy version " + c.PolicyVersion + " cannot be acted on locally: " + e.Message, e);
            }
            return c;
        }

        /// <summary>The optional `epsilon` field: absent or null, else a number.</summary>
        private static double? ReadEpsilon(object v)
        {
            if (v == null) return null;
            if (v is double) return (double)v;
            if (v is long) return (long)v;
            if (v is float) return (float)v;
            throw new ProtocolException("contract field 'epsilon': expected a number, got " + v);
        }

        /// <summary>The contract embedded in ONNX model bytes.</summary>
        public static PolicyContract FromOnnx(byte[] onnx)
        {
            string json = ReadOnnxMetadata(onnx, MetadataKey);
            if (json == null) throw new ProtocolException("the ONNX model has no '" + MetadataKey + "' metadata; export it with agentsdk (GET /v1/policy or `agentsdk export`)");
            return FromJson(json);
        }

        /// <summary>One metadata_props value of an ONNX ModelProto, or null.</summary>
        public static string ReadOnnxMetadata(byte[] onnx, string key)
        {
            var top = new Proto(onnx, 0, onnx.Length);
            int field, wire;
            while (top.Next(out field, out wire))
            {
                if (field == 14 && wire == 2)
                {
                    int start, len;
                    top.Bytes(out start, out len);
                    var entry = new Proto(onnx, start, len);
                    string k = null, v = null;
                    int f2, w2;
                    while (entry.Next(out f2, out w2))
                    {
                        if (w2 == 2 && (f2 == 1 || f2 == 2))
                        {
                            int s, n;
                            entry.Bytes(out s, out n);
                            string text = Encoding.UTF8.GetString(onnx, s, n);
                            if (f2 == 1) k = text; else v = text;
                        }
                        else entry.Skip(w2);
                    }
                    if (k == key) return v;
                }
                else top.Skip(wire);
            }
            return null;
        }

        /// <summary>A minimal protobuf wire-format scanner.</summary>
        private sealed class Proto
        {
            private readonly byte[] _b;
            private int _pos;
            private readonly int _end;

            public Proto(byte[] b, int start, int len)
            {
                _b = b;
                _pos = start;
                _end = start + len;
                if (start < 0 || len < 0 || _end > b.Length) throw new ProtocolException("malformed ONNX file (length out of range)");
            }

            public bool Next(out int field, out int wire)
            {
                field = wire = 0;
                if (_pos >= _end) return false;
                ulong tag = Varint();
                field = (int)(tag >> 3);
                wire = (int)(tag & 7);
                return true;
            }

            public ulong Varint()
            {
                ulong v = 0;
                for (int shift = 0; shift < 64; shift += 7)
                {
                    if (_pos >= _end) throw new ProtocolException("malformed ONNX file (truncated varint)");
                    byte b = _b[_pos++];
                    v |= (ulong)(b & 0x7f) << shift;
                    if ((b & 0x80) == 0) return v;
                }
                throw new ProtocolException("malformed ONNX file (varint too long)");
            }

            public void Bytes(out int start, out int len)
            {
                ulong n = Varint();
                if (n > (ulong)(_end - _pos)) throw new ProtocolException("malformed ONNX file (field longer than the message)");
                start = _pos;
                len = (int)n;
                _pos += len;
            }

            public void Skip(int wire)
            {
                int s, n;
                switch (wire)
                {
                    case 0: Varint(); break;
                    case 1: _pos += 8; break;
                    case 2: Bytes(out s, out n); break;
                    case 5: _pos += 4; break;
                    default: throw new ProtocolException("malformed ONNX file (wire type " + wire + ")");
                }
                if (_pos > _end) throw new ProtocolException("malformed ONNX file (truncated field)");
            }
        }
    }
}
