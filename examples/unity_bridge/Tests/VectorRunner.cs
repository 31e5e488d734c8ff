// Runs the shared protocol vectors (tests/vectors/NAME.msgpack + NAME.json) through the
// C# codec: each .msgpack must decode to the .json value, and encoding that value must
// give back exactly the .msgpack bytes. JSON conventions (tests/vectors/make_vectors.py):
// an array is {"ndarray": {"dtype", "shape", "values"}} (non-finite floats as "inf",
// "-inf", "nan"), bytes are {"bin": "<hex>"}.
//
// It also runs tests/vectors/distributions.json through Runtime/Distributions.cs: each
// case's distribution, rebuilt with ActionDistribution.For(action_space, distribution,
// epsilon), must give the deterministic_action and the logp of every scored action
// (within 1e-5, absolute or relative).
//
//   mono bin/vectors.exe [VECTOR_DIR]      prints "N passed, M failed" (codec vectors), then
//                                          "distributions: K passed, F failed"; exit 1 on any failure

using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using Agentsdk;

public static class VectorRunner
{
    public static int Main(string[] args)
    {
        string dir = args.Length > 0 ? args[0] : Path.Combine("tests", "vectors");
        if (!Directory.Exists(dir))
        {
            Console.Error.WriteLine("vector directory not found: " + dir);
            return 2;
        }
        var files = Directory.GetFiles(dir, "*.msgpack");
        Array.Sort(files, StringComparer.Ordinal);
        int passed = 0, failed = 0;
        foreach (var file in files)
        {
            string name = Path.GetFileNameWithoutExtension(file);
            string jsonPath = Path.Combine(dir, name + ".json");
            try
            {
                if (!File.Exists(jsonPath)) throw new Exception("no " + name + ".json beside " + name + ".msgpack");
                byte[] bytes = File.ReadAllBytes(file);
                object expected = FromVectorJson(Json.Parse(File.ReadAllText(jsonPath, Encoding.UTF8)));
                object decoded = MsgPack.Decode(bytes);
                string diff = Diff(decoded, expected, "$");
                if (diff != null) throw new Exception("decoded value differs: " + diff);
                byte[] encoded = MsgPack.Encode(expected);
                if (!SameBytes(encoded, bytes))
                    throw new Exception("re-encoding differs:\n  want " + Hex(bytes) + "\n  got  " + Hex(encoded));
                byte[] roundTrip = MsgPack.Encode(decoded);
                if (!SameBytes(roundTrip, bytes)) throw new Exception("encode(decode(bytes)) differs: " + Hex(roundTrip));
                if (name.StartsWith("space_", StringComparison.Ordinal))
                {
                    // A space spec must survive Space.FromSpec -> ToSpec byte for byte.
                    byte[] respec = MsgPack.Encode(Space.FromSpec(decoded).ToSpec());
                    if (!SameBytes(respec, bytes)) throw new Exception("Space.FromSpec(...).ToSpec() differs: " + Hex(respec));
                }
                Console.WriteLine("ok   " + name);
                passed++;
            }
            catch (Exception e)
            {
                Console.WriteLine("FAIL " + name + ": " + e.Message);
                failed++;
            }
        }
        Console.WriteLine(passed + " passed, " + failed + " failed");
        int distPassed, distFailed;
        RunDistributions(Path.Combine(dir, "distributions.json"), out distPassed, out distFailed);
        Console.WriteLine("distributions: " + distPassed + " passed, " + distFailed + " failed");
        return failed == 0 && passed > 0 && distFailed == 0 && distPassed > 0 ? 0 : 1;
    }

    private const double LogpTolerance = 1e-5;
    private const double ActionTolerance = 1e-6;

    /// <summary>Every case of distributions.json: the deterministic action and each scored logp.</summary>
    private static void RunDistributions(string path, out int passed, out int failed)
    {
        passed = failed = 0;
        List<object> cases;
        try
        {
            if (!File.Exists(path)) throw new Exception("not found");
            cases = (List<object>)Json.Parse(File.ReadAllText(path, Encoding.UTF8));
        }
        catch (Exception e)
        {
            Console.WriteLine("FAIL distributions.json: " + e.Message);
            failed++;
            return;
        }
        for (int k = 0; k < cases.Count; k++)
        {
            string name = "#" + k;
            try
            {
                var c = (MsgMap)cases[k];
                name = (string)c["name"];
                string distName = (string)c["distribution"];
                var space = Space.FromSpec(Space.SpecFromJson(c["action_space"]), "action_space", 0);
                double? epsilon = c.Get("epsilon") == null ? (double?)null : Number(c["epsilon"]);
                var inputs = Floats((List<object>)c["dist_inputs"]);
                if (inputs.Length != PolicyForm.DistInputsSize(space))
                    throw new Exception(inputs.Length + " dist_inputs, but " + space + " needs " + PolicyForm.DistInputsSize(space));
                var dist = ActionDistribution.For(space, distName, epsilon);
                if (dist.Name != distName) throw new Exception("ActionDistribution.For built " + dist.Name + ", want " + distName);
                bool isBox = space is BoxSpace;

                var sample = dist.Sample(inputs, new Random(0), true);
                var want = (List<object>)c["deterministic_action"];
                if (isBox)
                {
                    var w = Floats(want);
                    if (sample.Raw == null || sample.Raw.Length != w.Length) throw new Exception("deterministic action is not " + w.Length + " floats");
                    for (int i = 0; i < w.Length; i++)
                        if (!(Math.Abs(sample.Raw[i] - w[i]) <= ActionTolerance))
                            throw new Exception("deterministic action[" + i + "] " + R(sample.Raw[i]) + ", want " + R(w[i]));
                }
                else
                {
                    var w = Longs(want);
                    if (sample.Ints == null || string.Join(",", sample.Ints) != string.Join(",", w))
                        throw new Exception("deterministic action [" + (sample.Ints == null ? "null" : string.Join(",", sample.Ints))
                                            + "], want [" + string.Join(",", w) + "]");
                }

                var scored = (List<object>)c["scored"];
                if (scored.Count == 0) throw new Exception("no scored actions");
                foreach (MsgMap s in scored)
                {
                    var action = (List<object>)s["policy_action"];
                    long[] ints = isBox ? null : Longs(action);
                    float[] raw = isBox ? Floats(action) : null;
                    double got = dist.Logp(inputs, ints, raw);
                    double wantLogp = Number(s["logp"]);
                    bool same = double.IsInfinity(wantLogp) || double.IsNaN(wantLogp)
                        ? got.Equals(wantLogp)
                        : Math.Abs(got - wantLogp) <= Math.Max(LogpTolerance, LogpTolerance * Math.Abs(wantLogp));
                    if (!same)
                        throw new Exception("logp of [" + string.Join(", ", action.ConvertAll(v => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture)))
                                            + "] is " + R(got) + ", want " + R(wantLogp));
                }
                Console.WriteLine("ok   distributions: " + name + " (" + distName + ", " + scored.Count + " scored)");
                passed++;
            }
            catch (Exception e)
            {
                Console.WriteLine("FAIL distributions: " + name + ": " + e.Message);
                failed++;
            }
        }
    }

    /// <summary>A JSON number, or "inf" / "-inf" / "nan".</summary>
    private static double Number(object v)
    {
        if (v is double) return (double)v;
        if (v is long) return (long)v;
        switch (v as string)
        {
            case "inf": return double.PositiveInfinity;
            case "-inf": return double.NegativeInfinity;
            case "nan": return double.NaN;
        }
        throw new Exception("expected a number, got " + Show(v));
    }

    private static float[] Floats(List<object> values)
    {
        var r = new float[values.Count];
        for (int i = 0; i < r.Length; i++) r[i] = (float)Number(values[i]);
        return r;
    }

    private static long[] Longs(List<object> values)
    {
        var r = new long[values.Count];
        for (int i = 0; i < r.Length; i++)
        {
            if (!(values[i] is long)) throw new Exception("expected an integer action, got " + Show(values[i]));
            r[i] = (long)values[i];
        }
        return r;
    }

    private static string R(double v) { return v.ToString("R", System.Globalization.CultureInfo.InvariantCulture); }

    /// <summary>The vector JSON -> the codec's value model.</summary>
    private static object FromVectorJson(object j)
    {
        var map = j as MsgMap;
        if (map != null)
        {
            if (map.Count == 1 && map.ContainsKey("ndarray")) return ToNdArray((MsgMap)map["ndarray"]);
            if (map.Count == 1 && map.ContainsKey("bin")) return FromHex((string)map["bin"]);
            var r = new MsgMap();
            foreach (var kv in map) r.Add(kv.Key, FromVectorJson(kv.Value));
            return r;
        }
        var list = j as List<object>;
        if (list != null)
        {
            var r = new List<object>();
            foreach (var v in list) r.Add(FromVectorJson(v));
            return r;
        }
        return j;
    }

    private static NdArray ToNdArray(MsgMap spec)
    {
        var dtype = (string)spec["dtype"];
        var shapeList = (List<object>)spec["shape"];
        var shape = new int[shapeList.Count];
        for (int i = 0; i < shape.Length; i++) shape[i] = (int)(long)shapeList[i];
        var values = (List<object>)spec["values"];
        var a = NdArray.Zeros(dtype, shape);
        if (values.Count != a.Count) throw new Exception("vector array has " + values.Count + " values for shape " + NdArray.ShapeString(shape));
        for (int i = 0; i < values.Count; i++)
        {
            object v = values[i];
            if (v is bool) a.SetLong(i, (bool)v ? 1 : 0);
            else if (v is long && !a.IsFloat) a.SetLong(i, (long)v);
            else if (v is ulong) a.SetULong(i, (ulong)v);
            else if (v is long) a.SetDouble(i, (long)v);
            else if (v is double) a.SetDouble(i, (double)v);
            else if ((v as string) == "inf") a.SetDouble(i, double.PositiveInfinity);
            else if ((v as string) == "-inf") a.SetDouble(i, double.NegativeInfinity);
            else if ((v as string) == "nan") a.SetDouble(i, double.NaN);
            else throw new Exception("vector array value " + v + " is not a number");
        }
        return a;
    }

    private static string Diff(object got, object want, string path)
    {
        if (got == null || want == null) return got == want ? null : path + ": got " + Show(got) + ", want " + Show(want);
        if (got.GetType() != want.GetType()) return path + ": got " + Show(got) + " (" + got.GetType().Name + "), want " + Show(want) + " (" + want.GetType().Name + ")";
        if (got is double)
        {
            double g = (double)got, w = (double)want;
            return g.Equals(w) ? null : path + ": got " + g.ToString("R") + ", want " + w.ToString("R");
        }
        var gb = got as byte[];
        if (gb != null) return SameBytes(gb, (byte[])want) ? null : path + ": bytes differ";
        var gn = got as NdArray;
        if (gn != null)
        {
            var wn = (NdArray)want;
            if (gn.Dtype != wn.Dtype) return path + ": dtype " + gn.Dtype + ", want " + wn.Dtype;
            if (NdArray.ShapeString(gn.Shape) != NdArray.ShapeString(wn.Shape)) return path + ": shape " + NdArray.ShapeString(gn.Shape) + ", want " + NdArray.ShapeString(wn.Shape);
            return SameBytes(gn.Data, wn.Data) ? null : path + ": data " + Hex(gn.Data) + ", want " + Hex(wn.Data);
        }
        var gl = got as List<object>;
        if (gl != null)
        {
            var wl = (List<object>)want;
            if (gl.Count != wl.Count) return path + ": " + gl.Count + " items, want " + wl.Count;
            for (int i = 0; i < gl.Count; i++)
            {
                var d = Diff(gl[i], wl[i], path + "[" + i + "]");
                if (d != null) return d;
            }
            return null;
        }
        var gm = got as MsgMap;
        if (gm != null)
        {
            var wm = (MsgMap)want;
            var gk = new List<string>(gm.Keys);
            var wk = new List<string>(wm.Keys);
            if (string.Join(",", gk.ToArray()) != string.Join(",", wk.ToArray()))
                return path + ": keys [" + string.Join(",", gk.ToArray()) + "], want [" + string.Join(",", wk.ToArray()) + "]";
            foreach (var k in gk)
            {
                var d = Diff(gm[k], wm[k], path + "." + k);
                if (d != null) return d;
            }
            return null;
        }
        return got.Equals(want) ? null : path + ": got " + Show(got) + ", want " + Show(want);
    }

    private static string Show(object v) { return v == null ? "null" : v.ToString(); }

    private static bool SameBytes(byte[] a, byte[] b)
    {
        if (a.Length != b.Length) return false;
        for (int i = 0; i < a.Length; i++) if (a[i] != b[i]) return false;
        return true;
    }

    private static string Hex(byte[] b)
    {
        var sb = new StringBuilder();
        int n = Math.Min(b.Length, 96);
        for (int i = 0; i < n; i++) sb.Append(b[i].ToString("x2"));
        if (b.Length > n) sb.Append("... (" + b.Length + " bytes)");
        return sb.ToString();
    }

    private static byte[] FromHex(string hex)
    {
        var r = new byte[hex.Length / 2];
        for (int i = 0; i < r.Length; i++) r[i] = Convert.ToByte(hex.Substring(2 * i, 2), 16);
        return r;
    }
}
