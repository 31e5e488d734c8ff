// Observation and action spaces: the wire spec, checking values, flattening.
//
// PROTOCOL.md section 3 is the authority; clients/python/agentsdk_client/_spaces.py
// is the Python twin, and the two say the same thing about a bad value.
//
// Values an app hands over are coerced to one canonical form per space:
//
//   Box            NdArray of the space's shape and dtype    (from float[], double[], int[], long[], NdArray)
//   Discrete       long                                      (from int, long, short, byte, NdArray scalar)
//   MultiDiscrete  NdArray int64 of nvec's shape             (from int[], long[], NdArray)
//   MultiBinary    NdArray int8 of the space's shape         (from bool[], int[], sbyte[], byte[], NdArray)
//   Dict           MsgMap in spec order                      (from MsgMap or IDictionary<string, object>)
//   Tuple          List<object>                              (from any IList, e.g. object[])
//
// A batch of N values is what the wire carries (Stack / Unstack). Flatten writes what
// the policy network sees: float32, Box/MultiBinary raveled, discrete parts one-hot.

using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Agentsdk
{
    public abstract class Space
    {
        public const int MaxDepth = 8;

        /// <summary>Width of this space's flattened float32 observation vector.</summary>
        public abstract int FlatSize { get; }

        /// <summary>The wire spec (a MsgMap) of this space.</summary>
        public abstract MsgMap ToSpec();

        /// <summary>An app's value -> this space's canonical value, or SpaceException saying why not.</summary>
        public abstract object Coerce(object value, string path);

        /// <summary>Canonical values -> one wire batch.</summary>
        public abstract object Stack(IList<object> values);

        /// <summary>A wire batch of n values -> canonical values (checked strictly).</summary>
        public abstract List<object> Unstack(object batch, int n, string path);

        /// <summary>Write a canonical value's flattened form into dst at offset.</summary>
        public abstract void Flatten(object value, float[] dst, int offset);

        public float[] Flatten(object value)
        {
            var dst = new float[FlatSize];
            Flatten(value, dst, 0);
            return dst;
        }

        /// <summary>Build a space from its wire spec, rejecting anything malformed.</summary>
        public static Space FromSpec(object spec) { return FromSpec(spec, "space", 0); }

        public static Space FromSpec(object spec, string path, int depth)
        {
            if (depth > MaxDepth) throw new SpaceException("spaces may nest at most " + MaxDepth + " deep", path);
            var map = spec as MsgMap;
            var kind = map == null ? null : map.Get("type") as string;
            if (kind == null) throw new SpaceException("a space spec must be a map with a 'type'", path);
            switch (kind)
            {
                case "Box":
                {
                    var dtype = map.Get("dtype") as string;
                    if (dtype == null || NdArray.ItemSizeOf(dtype) == 0 || dtype == "bool")
                        throw new SpaceException("Box dtype must be a float or int wire dtype, got " + Show(map.Get("dtype")), path + ".dtype");
                    var shape = IntList(map.Get("shape"), path + ".shape");
                    var low = map.Get("low") as NdArray;
                    var high = map.Get("high") as NdArray;
                    if (low == null || !SameShape(low.Shape, shape)) throw new SpaceException("must be an array of shape " + NdArray.ShapeString(shape), path + ".low");
                    if (high == null || !SameShape(high.Shape, shape)) throw new SpaceException("must be an array of shape " + NdArray.ShapeString(shape), path + ".high");
                    return new BoxSpace(low.ToDoubleArray(), high.ToDoubleArray(), shape, dtype);
                }
                case "Discrete":
                {
                    long n = Int(map.Get("n"), path + ".n", 1);
                    object start = map.Get("start", 0L);
                    if (!(start is long)) throw new SpaceException("must be an int, got " + Show(start), path + ".start");
                    return new DiscreteSpace(n, (long)start);
                }
                case "MultiDiscrete":
                {
                    var nvec = map.Get("nvec") as NdArray;
                    if (nvec == null || !nvec.IsInteger) throw new SpaceException("must be an int64 array", path + ".nvec");
                    var start = map.Get("start") as NdArray;
                    if (start != null && (!start.IsInteger || !SameShape(start.Shape, nvec.Shape)))
                        throw new SpaceException("must be an int64 array of nvec's shape " + NdArray.ShapeString(nvec.Shape), path + ".start");
                    return new MultiDiscreteSpace(nvec.ToLongArray(), start == null ? null : start.ToLongArray(), nvec.Shape);
                }
                case "MultiBinary":
                    return new MultiBinarySpace(IntList(map.Get("shape"), path + ".shape"));
                case "Dict":
                {
                    var items = map.Get("spaces") as List<object>;
                    if (items == null) throw new SpaceException("must be a list of [key, space] pairs", path + ".spaces");
                    var parts = new List<KeyValuePair<string, Space>>();
                    foreach (var item in items)
                    {
                        var pair = item as List<object>;
                        if (pair == null || pair.Count != 2 || !(pair[0] is string))
                            throw new SpaceException("must be a list of [key, space] pairs", path + ".spaces");
                        var key = (string)pair[0];
                        parts.Add(new KeyValuePair<string, Space>(key, FromSpec(pair[1], path + "." + key, depth + 1)));
                    }
                    return new DictSpace(parts);
                }
                case "Tuple":
                {
                    var items = map.Get("spaces") as List<object>;
                    if (items == null) throw new SpaceException("must be a list of spaces", path + ".spaces");
                    var parts = new List<Space>();
                    for (int i = 0; i < items.Count; i++) parts.Add(FromSpec(items[i], path + "[" + i + "]", depth + 1));
                    return new TupleSpace(parts);
                }
                default:
                    throw new SpaceException("unknown space type '" + kind + "'; expected Box, Discrete, MultiDiscrete, MultiBinary, Dict or Tuple", path);
            }
        }

        /// <summary>
        /// A spec from the ONNX contract's JSON (arrays as {"dtype", "shape", "values"}, non-finite
        /// floats as "inf"/"-inf"/"nan") -> the wire form FromSpec reads.
        /// </summary>
        public static object SpecFromJson(object json)
        {
            var map = json as MsgMap;
            if (map != null && map.Count == 3 && map.ContainsKey("dtype") && map.ContainsKey("shape") && map.ContainsKey("values"))
            {
                var dtype = map["dtype"] as string;
                var shape = IntList(map["shape"], "array.shape");
                var values = map["values"] as List<object>;
                if (dtype == null || values == null) throw new SpaceException("contract array needs a dtype string and a values list");
                var a = NdArray.Zeros(dtype, shape);
                if (values.Count != a.Count) throw new SpaceException("contract array has " + values.Count + " values for shape " + NdArray.ShapeString(shape));
                for (int i = 0; i < values.Count; i++) a.SetDouble(i, JsonNumber(values[i]));
                if (!a.IsFloat) for (int i = 0; i < values.Count; i++) if (values[i] is long) a.SetLong(i, (long)values[i]);
                return a;
            }
            if (map != null)
            {
                var r = new MsgMap();
                foreach (var kv in map) r.Add(kv.Key, SpecFromJson(kv.Value));
                return r;
            }
            var list = json as List<object>;
            if (list != null)
            {
                var r = new List<object>(list.Count);
                foreach (var v in list) r.Add(SpecFromJson(v));
                return r;
            }
            return json;
        }

        private static double JsonNumber(object v)
        {
            if (v is long) return (long)v;
            if (v is double) return (double)v;
            var s = v as string;
            if (s == "inf") return double.PositiveInfinity;
            if (s == "-inf") return double.NegativeInfinity;
            if (s == "nan") return double.NaN;
            throw new SpaceException("contract array value " + Show(v) + " is not a number");
        }

        // -- helpers shared by the subclasses ------------------------------------------------

        internal static int[] IntList(object value, string path)
        {
            var list = value as List<object>;
            if (list == null) throw new SpaceException("must be a list of non-negative ints, got " + Show(value), path);
            var r = new int[list.Count];
            for (int i = 0; i < r.Length; i++)
            {
                if (!(list[i] is long) || (long)list[i] < 0 || (long)list[i] > int.MaxValue)
                    throw new SpaceException("must be a list of non-negative ints, got " + Show(value), path);
                r[i] = (int)(long)list[i];
            }
            return r;
        }

        internal static long Int(object value, string path, long minimum)
        {
            if (!(value is long) || (long)value < minimum)
                throw new SpaceException("must be an integer >= " + minimum + ", got " + Show(value), path);
            return (long)value;
        }

        internal static bool SameShape(int[] a, int[] b)
        {
            if (a.Length != b.Length) return false;
            for (int i = 0; i < a.Length; i++) if (a[i] != b[i]) return false;
            return true;
        }

        internal static string Show(object v)
        {
            if (v == null) return "null";
            var nd = v as NdArray;
            if (nd != null) return "an array of shape " + NdArray.ShapeString(nd.Shape) + " and dtype " + nd.Dtype;
            if (v is string) return "'" + v + "'";
            if (v is long || v is int || v is double || v is float || v is bool)
                return Convert.ToString(v, CultureInfo.InvariantCulture);
            var arr = v as Array;
            if (arr != null) return "a " + v.GetType().GetElementType().Name + "[" + arr.Length + "]";
            return "a " + v.GetType().Name;
        }

        internal static string Num(double x)
        {
            if (double.IsPositiveInfinity(x)) return "inf";
            if (double.IsNegativeInfinity(x)) return "-inf";
            return x.ToString("G6", CultureInfo.InvariantCulture);
        }

        /// <summary>
        /// Any numeric array-like -> NdArray of the given dtype and shape. sameKind: refuse a
        /// float source for an integer target (as numpy's same_kind casting does).
        /// </summary>
        internal static NdArray ToArray(object value, string dtype, int[] shape, string path, string spaceText)
        {
            var nd = value as NdArray;
            NdArray result;
            if (nd != null)
            {
                if (nd.Dtype == dtype) result = nd;
                else
                {
                    bool targetFloat = dtype[0] == 'f';
                    if (nd.IsFloat && !targetFloat)
                        throw new SpaceException("expected dtype " + dtype + " (space " + spaceText + "), got " + Show(nd), path);
                    result = NdArray.Zeros(dtype, nd.Shape);
                    for (int i = 0; i < nd.Count; i++)
                    {
                        if (targetFloat) result.SetDouble(i, nd.GetDouble(i));
                        else result.SetLong(i, nd.GetLong(i));
                    }
                }
                if (!SameShape(result.Shape, shape))
                    throw new SpaceException("expected shape " + NdArray.ShapeString(shape) + " (space " + spaceText + "), got " + Show(nd), path);
                return result;
            }
            var arr = value as Array;
            if (arr == null || arr.Rank != 1)
                throw new SpaceException("expected an array of shape " + NdArray.ShapeString(shape) + " and dtype " + dtype
                                         + " (space " + spaceText + "), got " + Show(value), path);
            long need = NdArray.CountOf(shape);
            if (arr.Length != need)
                throw new SpaceException("expected " + need + " values (shape " + NdArray.ShapeString(shape) + ", space " + spaceText
                                         + "), got " + Show(value), path);
            result = NdArray.Zeros(dtype, shape);
            bool toFloat = dtype[0] == 'f';
            var f = value as float[];
            if (f != null && dtype == "float32") return NdArray.FromFloats(f, shape);
            var d = value as double[];
            if (d != null)
            {
                if (!toFloat) throw new SpaceException("expected dtype " + dtype + " (space " + spaceText + "), got " + Show(value), path);
                for (int i = 0; i < d.Length; i++) result.SetDouble(i, d[i]);
                return result;
            }
            if (f != null)
            {
                if (!toFloat) throw new SpaceException("expected dtype " + dtype + " (space " + spaceText + "), got " + Show(value), path);
                for (int i = 0; i < f.Length; i++) result.SetDouble(i, f[i]);
                return result;
            }
            for (int i = 0; i < arr.Length; i++)
            {
                object v = arr.GetValue(i);
                long x;
                if (v is bool) x = (bool)v ? 1 : 0;
                else if (v is int) x = (int)v;
                else if (v is long) x = (long)v;
                else if (v is short) x = (short)v;
                else if (v is sbyte) x = (sbyte)v;
                else if (v is byte) x = (byte)v;
                else if (v is ushort) x = (ushort)v;
                else if (v is uint) x = (uint)v;
                else throw new SpaceException("expected numbers (space " + spaceText + "), got " + Show(value), path);
                result.SetLong(i, x);
            }
            return result;
        }

        internal static List<NdArray> AsArrays(IList<object> values)
        {
            var rows = new List<NdArray>(values.Count);
            foreach (var v in values) rows.Add((NdArray)v);
            return rows;
        }

        internal static NdArray CheckBatchArray(object batch, int n, string dtype, int[] shape, string path, string spaceText)
        {
            var nd = batch as NdArray;
            var want = new int[shape.Length + 1];
            want[0] = n;
            Array.Copy(shape, 0, want, 1, shape.Length);
            if (nd == null || nd.Dtype != dtype || !SameShape(nd.Shape, want))
                throw new SpaceException("expected an array of shape " + NdArray.ShapeString(want) + " and dtype " + dtype
                                         + ", got " + Show(batch) + " (space " + spaceText + ")", path);
            return nd;
        }
    }

    public sealed class BoxSpace : Space
    {
        public int[] Shape { get; private set; }
        public string Dtype { get; private set; }
        public double[] Low { get; private set; }
        public double[] High { get; private set; }
        /// <summary>Every bound finite: policy actions are squashed to [-1, 1].</summary>
        public bool Bounded { get; private set; }
        private readonly int _size;

        public BoxSpace(double[] low, double[] high, int[] shape, string dtype = "float32")
        {
            Shape = (int[])shape.Clone();
            Dtype = dtype;
            _size = (int)NdArray.CountOf(shape);
            if (low.Length != _size || high.Length != _size) throw new SpaceException("Box low and high must have " + _size + " values");
            Low = (double[])low.Clone();
            High = (double[])high.Clone();
            bool bounded = true;
            for (int i = 0; i < _size; i++)
            {
                if (Low[i] > High[i]) throw new SpaceException("Box low must not exceed high (index " + i + ")");
                if (double.IsInfinity(Low[i]) || double.IsInfinity(High[i])) bounded = false;
            }
            Bounded = bounded;
        }

        public override int FlatSize { get { return _size; } }

        public override string ToString()
        {
            double lo = double.PositiveInfinity, hi = double.NegativeInfinity;
            foreach (var v in Low) lo = Math.Min(lo, v);
            foreach (var v in High) hi = Math.Max(hi, v);
            var sb = new StringBuilder("Box(");
            sb.Append(_size == 0 ? "-" : Num(lo)).Append(", ").Append(_size == 0 ? "-" : Num(hi)).Append(", (");
            for (int i = 0; i < Shape.Length; i++) sb.Append(Shape[i]).Append(Shape.Length == 1 ? "," : i + 1 < Shape.Length ? ", " : "");
            return sb.Append("), ").Append(Dtype).Append(')').ToString();
        }

        public override MsgMap ToSpec()
        {
            var low = NdArray.Zeros(Dtype, Shape);
            var high = NdArray.Zeros(Dtype, Shape);
            for (int i = 0; i < _size; i++) { low.SetDouble(i, Low[i]); high.SetDouble(i, High[i]); }
            var m = new MsgMap();
            m.Add("type", "Box");
            var shape = new List<object>();
            foreach (var d in Shape) shape.Add((long)d);
            m.Add("shape", shape);
            m.Add("dtype", Dtype);
            m.Add("low", low);
            m.Add("high", high);
            return m;
        }

        public override object Coerce(object value, string path)
        {
            var a = ToArray(value, Dtype, Shape, path, ToString());
            CheckValues(a, 0, path);
            return a;
        }

        private void CheckValues(NdArray a, int offset, string path)
        {
            for (int i = 0; i < _size; i++)
            {
                double v = a.GetDouble(offset + i);
                if (!(v >= Low[i] && v <= High[i]))  // NaN never fits
                    throw new SpaceException("value " + Num(v) + " at index " + i + " is outside the bounds ["
                                             + Num(Low[i]) + ", " + Num(High[i]) + "] of " + this, path);
            }
        }

        public override object Stack(IList<object> values) { return NdArray.Stack(AsArrays(values), Dtype, Shape); }

        public override List<object> Unstack(object batch, int n, string path)
        {
            var nd = CheckBatchArray(batch, n, Dtype, Shape, path, ToString());
            var r = new List<object>(n);
            for (int i = 0; i < n; i++) { CheckValues(nd, i * _size, path + "[" + i + "]"); r.Add(nd.Row(i)); }
            return r;
        }

        public override void Flatten(object value, float[] dst, int offset)
        {
            var a = (NdArray)value;
            for (int i = 0; i < _size; i++) dst[offset + i] = (float)a.GetDouble(i);
        }

        /// <summary>Raw policy sample -> env action: clip(low + (r + 1) (high - low) / 2) when bounded, else r.</summary>
        public NdArray Unsquash(float[] raw)
        {
            var a = NdArray.Zeros(Dtype, Shape);
            for (int i = 0; i < _size; i++)
            {
                double v = raw[i];
                if (Bounded) v = Math.Min(High[i], Math.Max(Low[i], Low[i] + (v + 1.0) * (High[i] - Low[i]) / 2.0));
                a.SetDouble(i, v);
            }
            return a;
        }

        /// <summary>Env action -> raw policy value (inverse of Unsquash inside the bounds).</summary>
        public float[] Squash(NdArray env)
        {
            var r = new float[_size];
            for (int i = 0; i < _size; i++)
            {
                double v = env.GetDouble(i);
                if (Bounded)
                {
                    double span = High[i] > Low[i] ? High[i] - Low[i] : 1.0;
                    v = 2.0 * (v - Low[i]) / span - 1.0;
                }
                r[i] = (float)v;
            }
            return r;
        }
    }

    public sealed class DiscreteSpace : Space
    {
        public long N { get; private set; }
        public long Start { get; private set; }

        public DiscreteSpace(long n, long start = 0)
        {
            if (n < 1) throw new SpaceException("Discrete n must be at least 1");
            if (n > int.MaxValue) throw new SpaceException("Discrete n is too large to one-hot encode");
            N = n;
            Start = start;
        }

        public override int FlatSize { get { return (int)N; } }

        public override string ToString() { return Start == 0 ? "Discrete(" + N + ")" : "Discrete(" + N + ", start=" + Start + ")"; }

        public override MsgMap ToSpec()
        {
            var m = new MsgMap();
            m.Add("type", "Discrete");
            m.Add("n", N);
            m.Add("start", Start);
            return m;
        }

        public override object Coerce(object value, string path)
        {
            long v;
            var nd = value as NdArray;
            if (nd != null && nd.Ndim == 0 && nd.IsInteger) v = nd.GetLong(0);
            else if (value is long) v = (long)value;
            else if (value is int) v = (int)value;
            else if (value is short) v = (short)value;
            else if (value is sbyte) v = (sbyte)value;
            else if (value is byte) v = (byte)value;
            else if (value is ushort) v = (ushort)value;
            else if (value is uint) v = (uint)value;
            else throw new SpaceException("expected an int in " + this + ", got " + Show(value), path);
            if (v < Start || v >= Start + N) throw new SpaceException("value " + v + " is not in " + this, path);
            return v;
        }

        public override object Stack(IList<object> values)
        {
            var a = NdArray.Zeros("int64", values.Count);
            for (int i = 0; i < values.Count; i++) a.SetLong(i, (long)values[i]);
            return a;
        }

        public override List<object> Unstack(object batch, int n, string path)
        {
            var nd = CheckBatchArray(batch, n, "int64", new int[0], path, ToString());
            var r = new List<object>(n);
            for (int i = 0; i < n; i++)
            {
                long v = nd.GetLong(i);
                if (v < Start || v >= Start + N) throw new SpaceException("value " + v + " is not in " + this, path + "[" + i + "]");
                r.Add(v);
            }
            return r;
        }

        public override void Flatten(object value, float[] dst, int offset)
        {
            Array.Clear(dst, offset, (int)N);
            dst[offset + (int)((long)value - Start)] = 1f;
        }
    }

    public sealed class MultiDiscreteSpace : Space
    {
        public long[] Nvec { get; private set; }
        public long[] Start { get; private set; }
        public int[] Shape { get; private set; }
        private readonly int _flat;

        public MultiDiscreteSpace(long[] nvec, long[] start = null, int[] shape = null)
        {
            if (nvec.Length == 0) throw new SpaceException("MultiDiscrete nvec must be non-empty");
            Nvec = (long[])nvec.Clone();
            Start = start == null ? new long[nvec.Length] : (long[])start.Clone();
            Shape = shape == null ? new[] { nvec.Length } : (int[])shape.Clone();
            if (Start.Length != Nvec.Length || NdArray.CountOf(Shape) != Nvec.Length) throw new SpaceException("MultiDiscrete nvec, start and shape disagree");
            long flat = 0;
            foreach (var n in Nvec)
            {
                if (n < 1) throw new SpaceException("MultiDiscrete nvec entries must be >= 1");
                flat += n;
            }
            _flat = (int)flat;
        }

        public override int FlatSize { get { return _flat; } }

        public override string ToString() { return "MultiDiscrete([" + string.Join(", ", Array.ConvertAll(Nvec, x => x.ToString())) + "])"; }

        public override MsgMap ToSpec()
        {
            var m = new MsgMap();
            m.Add("type", "MultiDiscrete");
            m.Add("nvec", NdArray.FromLongs(Nvec, Shape));
            m.Add("start", NdArray.FromLongs(Start, Shape));
            return m;
        }

        public override object Coerce(object value, string path)
        {
            var a = ToArray(value, "int64", Shape, path, ToString());
            CheckValues(a, 0, path);
            return a;
        }

        private void CheckValues(NdArray a, int offset, string path)
        {
            for (int i = 0; i < Nvec.Length; i++)
            {
                long v = a.GetLong(offset + i);
                if (v < Start[i] || v >= Start[i] + Nvec[i])
                    throw new SpaceException("value " + v + " at index " + i + " is not in " + this, path);
            }
        }

        public override object Stack(IList<object> values) { return NdArray.Stack(AsArrays(values), "int64", Shape); }

        public override List<object> Unstack(object batch, int n, string path)
        {
            var nd = CheckBatchArray(batch, n, "int64", Shape, path, ToString());
            var r = new List<object>(n);
            for (int i = 0; i < n; i++) { CheckValues(nd, i * Nvec.Length, path + "[" + i + "]"); r.Add(nd.Row(i)); }
            return r;
        }

        public override void Flatten(object value, float[] dst, int offset)
        {
            var a = (NdArray)value;
            Array.Clear(dst, offset, _flat);
            int o = offset;
            for (int i = 0; i < Nvec.Length; i++)
            {
                dst[o + (int)(a.GetLong(i) - Start[i])] = 1f;
                o += (int)Nvec[i];
            }
        }
    }

    public sealed class MultiBinarySpace : Space
    {
        public int[] Shape { get; private set; }
        private readonly int _size;

        public MultiBinarySpace(params int[] shape)
        {
            Shape = (int[])shape.Clone();
            _size = (int)NdArray.CountOf(shape);
            if (_size < 1) throw new SpaceException("MultiBinary needs at least one element");
        }

        public override int FlatSize { get { return _size; } }

        public override string ToString() { return "MultiBinary(" + NdArray.ShapeString(Shape) + ")"; }

        public override MsgMap ToSpec()
        {
            var m = new MsgMap();
            m.Add("type", "MultiBinary");
            var shape = new List<object>();
            foreach (var d in Shape) shape.Add((long)d);
            m.Add("shape", shape);
            return m;
        }

        public override object Coerce(object value, string path)
        {
            var a = ToArray(value, "int8", Shape, path, ToString());
            CheckValues(a, 0, path);
            return a;
        }

        private void CheckValues(NdArray a, int offset, string path)
        {
            for (int i = 0; i < _size; i++)
            {
                long v = a.GetLong(offset + i);
                if (v != 0 && v != 1) throw new SpaceException("values must be 0 or 1, got " + v + " at index " + i + " (space " + this + ")", path);
            }
        }

        public override object Stack(IList<object> values) { return NdArray.Stack(AsArrays(values), "int8", Shape); }

        public override List<object> Unstack(object batch, int n, string path)
        {
            var nd = CheckBatchArray(batch, n, "int8", Shape, path, ToString());
            var r = new List<object>(n);
            for (int i = 0; i < n; i++) { CheckValues(nd, i * _size, path + "[" + i + "]"); r.Add(nd.Row(i)); }
            return r;
        }

        public override void Flatten(object value, float[] dst, int offset)
        {
            var a = (NdArray)value;
            for (int i = 0; i < _size; i++) dst[offset + i] = a.GetLong(i);
        }
    }

    public sealed class DictSpace : Space
    {
        public IList<KeyValuePair<string, Space>> Spaces { get; private set; }
        private readonly int _flat;

        public DictSpace(IList<KeyValuePair<string, Space>> spaces)
        {
            if (spaces.Count == 0) throw new SpaceException("Dict needs at least one sub-space");
            Spaces = new List<KeyValuePair<string, Space>>(spaces).AsReadOnly();
            var seen = new HashSet<string>();
            foreach (var kv in spaces)
            {
                if (!seen.Add(kv.Key)) throw new SpaceException("Dict has the key '" + kv.Key + "' twice");
                _flat += kv.Value.FlatSize;
            }
        }

        public override int FlatSize { get { return _flat; } }

        public override string ToString()
        {
            var parts = new List<string>();
            foreach (var kv in Spaces) parts.Add("'" + kv.Key + "': " + kv.Value);
            return "Dict(" + string.Join(", ", parts.ToArray()) + ")";
        }

        private string KeyList()
        {
            var keys = new List<string>();
            foreach (var kv in Spaces) keys.Add("'" + kv.Key + "'");
            return "[" + string.Join(", ", keys.ToArray()) + "]";
        }

        public override MsgMap ToSpec()
        {
            var items = new List<object>();
            foreach (var kv in Spaces) items.Add(new List<object> { kv.Key, kv.Value.ToSpec() });
            var m = new MsgMap();
            m.Add("type", "Dict");
            m.Add("spaces", items);
            return m;
        }

        private static bool TryGet(object map, string key, out object value)
        {
            var mm = map as MsgMap;
            if (mm != null) return mm.TryGetValue(key, out value);
            var d = map as IDictionary<string, object>;
            if (d != null) return d.TryGetValue(key, out value);
            value = null;
            return false;
        }

        private static int CountOf(object map)
        {
            var mm = map as MsgMap;
            if (mm != null) return mm.Count;
            var d = map as IDictionary<string, object>;
            return d != null ? d.Count : -1;
        }

        private void CheckKeys(object value, string path)
        {
            bool ok = CountOf(value) == Spaces.Count;
            if (ok)
            {
                object unused;
                foreach (var kv in Spaces) if (!TryGet(value, kv.Key, out unused)) { ok = false; break; }
            }
            if (!ok)
            {
                string got;
                if (CountOf(value) < 0) got = Show(value);
                else
                {
                    var keys = new List<string>();
                    var mm = value as MsgMap;
                    if (mm != null) foreach (var k in mm.Keys) keys.Add("'" + k + "'");
                    else foreach (var k in ((IDictionary<string, object>)value).Keys) keys.Add("'" + k + "'");
                    keys.Sort(StringComparer.Ordinal);
                    got = "keys [" + string.Join(", ", keys.ToArray()) + "]";
                }
                throw new SpaceException("expected a map with keys " + KeyList() + ", got " + got, path);
            }
        }

        public override object Coerce(object value, string path)
        {
            CheckKeys(value, path);
            var r = new MsgMap();
            foreach (var kv in Spaces)
            {
                object v;
                TryGet(value, kv.Key, out v);
                r.Add(kv.Key, kv.Value.Coerce(v, path + "." + kv.Key));
            }
            return r;
        }

        public override object Stack(IList<object> values)
        {
            var r = new MsgMap();
            foreach (var kv in Spaces)
            {
                var part = new List<object>(values.Count);
                foreach (var v in values) part.Add(((MsgMap)v)[kv.Key]);
                r.Add(kv.Key, kv.Value.Stack(part));
            }
            return r;
        }

        public override List<object> Unstack(object batch, int n, string path)
        {
            CheckKeys(batch, path);
            var parts = new List<List<object>>();
            foreach (var kv in Spaces)
            {
                object b;
                TryGet(batch, kv.Key, out b);
                parts.Add(kv.Value.Unstack(b, n, path + "." + kv.Key));
            }
            var r = new List<object>(n);
            for (int i = 0; i < n; i++)
            {
                var m = new MsgMap();
                for (int k = 0; k < Spaces.Count; k++) m.Add(Spaces[k].Key, parts[k][i]);
                r.Add(m);
            }
            return r;
        }

        public override void Flatten(object value, float[] dst, int offset)
        {
            var m = (MsgMap)value;
            foreach (var kv in Spaces)
            {
                kv.Value.Flatten(m[kv.Key], dst, offset);
                offset += kv.Value.FlatSize;
            }
        }
    }

    public sealed class TupleSpace : Space
    {
        public IList<Space> Spaces { get; private set; }
        private readonly int _flat;

        public TupleSpace(IList<Space> spaces)
        {
            if (spaces.Count == 0) throw new SpaceException("Tuple needs at least one sub-space");
            Spaces = new List<Space>(spaces).AsReadOnly();
            foreach (var s in spaces) _flat += s.FlatSize;
        }

        public override int FlatSize { get { return _flat; } }

        public override string ToString()
        {
            var parts = new List<string>();
            foreach (var s in Spaces) parts.Add(s.ToString());
            return "Tuple(" + string.Join(", ", parts.ToArray()) + ")";
        }

        public override MsgMap ToSpec()
        {
            var items = new List<object>();
            foreach (var s in Spaces) items.Add(s.ToSpec());
            var m = new MsgMap();
            m.Add("type", "Tuple");
            m.Add("spaces", items);
            return m;
        }

        private IList CheckLen(object value, string path)
        {
            var list = value as IList;
            if (list == null || value is Array && !(value is object[]) || list.Count != Spaces.Count)
                throw new SpaceException("expected a list of " + Spaces.Count + " items, got " + Show(value)
                                         + (list != null ? " of length " + list.Count : ""), path);
            return list;
        }

        public override object Coerce(object value, string path)
        {
            var list = CheckLen(value, path);
            var r = new List<object>(Spaces.Count);
            for (int i = 0; i < Spaces.Count; i++) r.Add(Spaces[i].Coerce(list[i], path + "[" + i + "]"));
            return r;
        }

        public override object Stack(IList<object> values)
        {
            var r = new List<object>(Spaces.Count);
            for (int i = 0; i < Spaces.Count; i++)
            {
                var part = new List<object>(values.Count);
                foreach (var v in values) part.Add(((List<object>)v)[i]);
                r.Add(Spaces[i].Stack(part));
            }
            return r;
        }

        public override List<object> Unstack(object batch, int n, string path)
        {
            var list = CheckLen(batch, path);
            var parts = new List<List<object>>();
            for (int i = 0; i < Spaces.Count; i++) parts.Add(Spaces[i].Unstack(list[i], n, path + "[" + i + "]"));
            var r = new List<object>(n);
            for (int j = 0; j < n; j++)
            {
                var t = new List<object>(Spaces.Count);
                foreach (var p in parts) t.Add(p[j]);
                r.Add(t);
            }
            return r;
        }

        public override void Flatten(object value, float[] dst, int offset)
        {
            var list = (List<object>)value;
            for (int i = 0; i < Spaces.Count; i++)
            {
                Spaces[i].Flatten(list[i], dst, offset);
                offset += Spaces[i].FlatSize;
            }
        }
    }

    /// <summary>Actions as the policy emits and trains on them (PROTOCOL.md "policy form").</summary>
    public static class PolicyForm
    {
        /// <summary>Refuse action spaces the protocol (1.0 and 1.1) cannot train (Dict, Tuple, integer Box).</summary>
        public static void CheckTrainable(Space space)
        {
            var box = space as BoxSpace;
            if (space is DictSpace || space is TupleSpace)
                throw new SpaceException("action space " + space + " cannot be trained yet: use Box, Discrete, MultiDiscrete or MultiBinary");
            if (box != null && box.Dtype[0] != 'f') throw new SpaceException("Box action spaces must have a float dtype, got " + box);
        }

        /// <summary>Width A of one policy-form action (1 for Discrete).</summary>
        public static int Width(Space space)
        {
            if (space is DiscreteSpace) return 1;
            var md = space as MultiDiscreteSpace;
            if (md != null) return md.Nvec.Length;
            return space.FlatSize;
        }

        /// <summary>Width D of the distribution inputs.</summary>
        public static int DistInputsSize(Space space)
        {
            if (space is BoxSpace || space is MultiBinarySpace) return 2 * space.FlatSize;
            return space.FlatSize;
        }

        /// <summary>A canonical env action -> one policy-form row (int64 or float32 NdArray; Discrete: a scalar).</summary>
        public static NdArray FromEnv(Space space, object action)
        {
            var d = space as DiscreteSpace;
            if (d != null) return new NdArray("int64", new int[0], LongBytes((long)action - d.Start));
            var md = space as MultiDiscreteSpace;
            if (md != null)
            {
                var a = (NdArray)action;
                var r = NdArray.Zeros("int64", md.Nvec.Length);
                for (int i = 0; i < md.Nvec.Length; i++) r.SetLong(i, a.GetLong(i) - md.Start[i]);
                return r;
            }
            var mb = space as MultiBinarySpace;
            if (mb != null)
            {
                var a = (NdArray)action;
                var r = NdArray.Zeros("int64", mb.FlatSize);
                for (int i = 0; i < mb.FlatSize; i++) r.SetLong(i, a.GetLong(i));
                return r;
            }
            var box = space as BoxSpace;
            if (box != null) return NdArray.FromFloats(box.Squash((NdArray)action), box.FlatSize);
            throw new SpaceException("no policy representation for " + space);
        }

        /// <summary>A policy-form action (ints, or raw floats for Box) -> the canonical env action.</summary>
        public static object ToEnv(Space space, long[] ints, float[] raw)
        {
            var d = space as DiscreteSpace;
            if (d != null) return ints[0] + d.Start;
            var md = space as MultiDiscreteSpace;
            if (md != null)
            {
                var r = NdArray.Zeros("int64", md.Shape);
                for (int i = 0; i < ints.Length; i++) r.SetLong(i, ints[i] + md.Start[i]);
                return r;
            }
            var mb = space as MultiBinarySpace;
            if (mb != null)
            {
                var r = NdArray.Zeros("int8", mb.Shape);
                for (int i = 0; i < ints.Length; i++) r.SetLong(i, ints[i]);
                return r;
            }
            var box = space as BoxSpace;
            if (box != null) return box.Unsquash(raw);
            throw new SpaceException("no policy representation for " + space);
        }

        private static byte[] LongBytes(long v)
        {
            var b = new byte[8];
            Bits.WriteU(b, 0, 8, unchecked((ulong)v));
            return b;
        }
    }
}
