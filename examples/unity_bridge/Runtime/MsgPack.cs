// The wire codec: MessagePack plus the protocol's n-dimensional array extension.
//
// This file is the C# implementation of PROTOCOL.md section 2 ("Encoding"). It is
// self-contained (no reflection, no packages) so that it compiles with Debian's mcs
// and with Unity's compiler alike.
//
// Value model (what Decode returns and Encode accepts):
//
//   msgpack          C#
//   nil              null
//   bool             bool
//   int              long (ulong only above long.MaxValue); Encode also takes int, short, ...
//   float            double (Encode writes float and double as float 64)
//   str              string
//   bin              byte[]
//   array            List<object> (Encode takes any IList)
//   map              MsgMap: string keys, insertion order kept (order is part of the bytes)
//   ext 1            NdArray: dtype name, shape, raw little-endian C-order bytes
//
// Encoding is canonical: the shortest int form, float 64 outside arrays, str8/16/32,
// bin8/16/32, fixext where the payload length allows. That is what lets the shared
// vectors compare bytes.

using System;
using System.Collections;
using System.Collections.Generic;
using System.Text;

namespace Agentsdk
{
    /// <summary>A string-keyed map that keeps insertion order (the order is part of the wire bytes).</summary>
    public sealed class MsgMap : IEnumerable<KeyValuePair<string, object>>
    {
        private readonly List<KeyValuePair<string, object>> _items = new List<KeyValuePair<string, object>>();
        private readonly Dictionary<string, int> _index = new Dictionary<string, int>(StringComparer.Ordinal);

        public MsgMap() { }

        public int Count { get { return _items.Count; } }

        /// <summary>Get a value (KeyNotFoundException if absent) or set one (replacing in place, or appending).</summary>
        public object this[string key]
        {
            get
            {
                int i;
                if (!_index.TryGetValue(key, out i)) throw new KeyNotFoundException("no key '" + key + "' in map");
                return _items[i].Value;
            }
            set
            {
                int i;
                if (_index.TryGetValue(key, out i)) _items[i] = new KeyValuePair<string, object>(key, value);
                else
                {
                    _index[key] = _items.Count;
                    _items.Add(new KeyValuePair<string, object>(key, value));
                }
            }
        }

        /// <summary>Append a key; a duplicate key is an error (the decoder relies on this).</summary>
        public void Add(string key, object value)
        {
            if (key == null) throw new ArgumentNullException("key");
            if (_index.ContainsKey(key)) throw new ArgumentException("duplicate map key '" + key + "'");
            _index[key] = _items.Count;
            _items.Add(new KeyValuePair<string, object>(key, value));
        }

        public bool ContainsKey(string key) { return _index.ContainsKey(key); }

        public bool TryGetValue(string key, out object value)
        {
            int i;
            if (_index.TryGetValue(key, out i)) { value = _items[i].Value; return true; }
            value = null;
            return false;
        }

        /// <summary>The value under key, or fallback when absent.</summary>
        public object Get(string key, object fallback = null)
        {
            object v;
            return TryGetValue(key, out v) ? v : fallback;
        }

        public IEnumerable<string> Keys
        {
            get { foreach (var kv in _items) yield return kv.Key; }
        }

        public IEnumerator<KeyValuePair<string, object>> GetEnumerator() { return _items.GetEnumerator(); }
        IEnumerator IEnumerable.GetEnumerator() { return _items.GetEnumerator(); }
    }

    /// <summary>
    /// An n-dimensional array as it travels: a dtype name, a shape, and the elements' raw
    /// little-endian bytes in C order. Typed accessors convert element by element.
    /// </summary>
    public sealed class NdArray
    {
        public const int MaxNdim = 8;
        private static readonly string[] DtypeNames =
        {
            "bool", "int8", "uint8", "int16", "uint16", "int32", "uint32",
            "int64", "uint64", "float16", "float32", "float64",
        };

        public string Dtype { get; private set; }
        public int[] Shape { get; private set; }
        public byte[] Data { get; private set; }

        public NdArray(string dtype, int[] shape, byte[] data)
        {
            if (ItemSizeOf(dtype) == 0)
                throw new MsgPackException("array dtype '" + dtype + "' is not one of " + string.Join(", ", DtypeNames));
            if (shape == null) throw new ArgumentNullException("shape");
            if (shape.Length > MaxNdim) throw new MsgPackException("arrays have at most " + MaxNdim + " dimensions, got " + shape.Length);
            long count = 1;
            foreach (int d in shape)
            {
                if (d < 0) throw new MsgPackException("array shape entries must be non-negative, got " + ShapeString(shape));
                count *= d;
            }
            long need = count * ItemSizeOf(dtype);
            if (data == null || data.LongLength != need)
                throw new MsgPackException("array data has " + (data == null ? 0 : data.Length) + " bytes but dtype " + dtype
                                           + " and shape " + ShapeString(shape) + " need " + need);
            Dtype = dtype;
            Shape = (int[])shape.Clone();
            Data = data;
        }

        /// <summary>A zero-filled array.</summary>
        public static NdArray Zeros(string dtype, params int[] shape)
        {
            int size = ItemSizeOf(dtype);
            if (size == 0) throw new MsgPackException("array dtype '" + dtype + "' is not one of " + string.Join(", ", DtypeNames));
            return new NdArray(dtype, shape, new byte[CountOf(shape) * size]);
        }

        public static NdArray FromFloats(float[] values, params int[] shape)
        {
            var a = Zeros("float32", shape.Length == 0 ? new[] { values.Length } : shape);
            if (a.Count != values.Length) throw new ArgumentException("shape " + ShapeString(shape) + " does not hold " + values.Length + " values");
            Buffer.BlockCopy(values, 0, a.Data, 0, values.Length * 4);
            if (!BitConverter.IsLittleEndian) a.SwapBytes();
            return a;
        }

        public static NdArray FromDoubles(double[] values, params int[] shape)
        {
            var a = Zeros("float64", shape.Length == 0 ? new[] { values.Length } : shape);
            if (a.Count != values.Length) throw new ArgumentException("shape " + ShapeString(shape) + " does not hold " + values.Length + " values");
            Buffer.BlockCopy(values, 0, a.Data, 0, values.Length * 8);
            if (!BitConverter.IsLittleEndian) a.SwapBytes();
            return a;
        }

        public static NdArray FromLongs(long[] values, params int[] shape)
        {
            var a = Zeros("int64", shape.Length == 0 ? new[] { values.Length } : shape);
            if (a.Count != values.Length) throw new ArgumentException("shape " + ShapeString(shape) + " does not hold " + values.Length + " values");
            Buffer.BlockCopy(values, 0, a.Data, 0, values.Length * 8);
            if (!BitConverter.IsLittleEndian) a.SwapBytes();
            return a;
        }

        public int Ndim { get { return Shape.Length; } }

        /// <summary>Number of elements (1 for a scalar).</summary>
        public int Count { get { return (int)CountOf(Shape); } }

        public int ItemSize { get { return ItemSizeOf(Dtype); } }

        public bool IsFloat { get { return Dtype[0] == 'f'; } }

        public bool IsInteger { get { return Dtype != "bool" && !IsFloat; } }

        /// <summary>Bytes per item of a wire dtype, or 0 if the name is not a wire dtype.</summary>
        public static int ItemSizeOf(string dtype)
        {
            switch (dtype)
            {
                case "bool": case "int8": case "uint8": return 1;
                case "int16": case "uint16": case "float16": return 2;
                case "int32": case "uint32": case "float32": return 4;
                case "int64": case "uint64": case "float64": return 8;
                default: return 0;
            }
        }

        public static long CountOf(int[] shape)
        {
            long n = 1;
            foreach (int d in shape) n *= d;
            return n;
        }

        public static string ShapeString(int[] shape)
        {
            var sb = new StringBuilder("[");
            for (int i = 0; i < shape.Length; i++) { if (i > 0) sb.Append(", "); sb.Append(shape[i]); }
            return sb.Append(']').ToString();
        }

        public override string ToString() { return "NdArray(" + Dtype + ", " + ShapeString(Shape) + ")"; }

        // -- element access ---------------------------------------------------------------

        public double GetDouble(int i)
        {
            int o = i * ItemSize;
            switch (Dtype)
            {
                case "float32": return Bits.ReadFloat(Data, o);
                case "float64": return Bits.ReadDouble(Data, o);
                case "float16": return Bits.HalfToFloat((ushort)Bits.ReadU(Data, o, 2));
                case "uint64": return (double)GetULong(i);
                default: return GetLong(i);
            }
        }

        public float GetFloat(int i) { return (float)GetDouble(i); }

        /// <summary>Element i as an integer (floats are truncated toward zero).</summary>
        public long GetLong(int i)
        {
            int o = i * ItemSize;
            switch (Dtype)
            {
                case "bool": case "uint8": case "uint16": case "uint32": return (long)Bits.ReadU(Data, o, ItemSize);
                case "uint64": return unchecked((long)Bits.ReadU(Data, o, 8));
                case "int8": return (sbyte)Data[o];
                case "int16": return (short)Bits.ReadU(Data, o, 2);
                case "int32": return (int)Bits.ReadU(Data, o, 4);
                case "int64": return unchecked((long)Bits.ReadU(Data, o, 8));
                default: return (long)GetDouble(i);
            }
        }

        public ulong GetULong(int i)
        {
            if (Dtype == "uint64") return Bits.ReadU(Data, i * 8, 8);
            return unchecked((ulong)GetLong(i));
        }

        public void SetDouble(int i, double v)
        {
            int o = i * ItemSize;
            switch (Dtype)
            {
                case "float32": Bits.WriteFloat(Data, o, (float)v); break;
                case "float64": Bits.WriteDouble(Data, o, v); break;
                case "float16": Bits.WriteU(Data, o, 2, Bits.FloatToHalf((float)v)); break;
                default: SetLong(i, (long)v); break;
            }
        }

        public void SetLong(int i, long v)
        {
            if (IsFloat) { SetDouble(i, v); return; }
            if (Dtype == "bool") v = v != 0 ? 1 : 0;
            Bits.WriteU(Data, i * ItemSize, ItemSize, unchecked((ulong)v));
        }

        public void SetULong(int i, ulong v)
        {
            if (IsFloat) { SetDouble(i, v); return; }
            Bits.WriteU(Data, i * ItemSize, ItemSize, v);
        }

        public float[] ToFloatArray()
        {
            int n = Count;
            var r = new float[n];
            if (Dtype == "float32" && BitConverter.IsLittleEndian) { Buffer.BlockCopy(Data, 0, r, 0, n * 4); return r; }
            for (int i = 0; i < n; i++) r[i] = (float)GetDouble(i);
            return r;
        }

        public double[] ToDoubleArray()
        {
            int n = Count;
            var r = new double[n];
            for (int i = 0; i < n; i++) r[i] = GetDouble(i);
            return r;
        }

        public long[] ToLongArray()
        {
            int n = Count;
            var r = new long[n];
            for (int i = 0; i < n; i++) r[i] = GetLong(i);
            return r;
        }

        /// <summary>Row i along the first axis, as a new array of shape Shape[1:].</summary>
        public NdArray Row(int i)
        {
            if (Shape.Length == 0) throw new InvalidOperationException("a scalar array has no rows");
            if (i < 0 || i >= Shape[0]) throw new IndexOutOfRangeException("row " + i + " of an array with " + Shape[0] + " rows");
            var rest = new int[Shape.Length - 1];
            Array.Copy(Shape, 1, rest, 0, rest.Length);
            int rowBytes = Shape[0] == 0 ? 0 : Data.Length / Shape[0];
            var data = new byte[rowBytes];
            Buffer.BlockCopy(Data, i * rowBytes, data, 0, rowBytes);
            return new NdArray(Dtype, rest, data);
        }

        /// <summary>Stack arrays of one dtype and shape along a new first axis.</summary>
        public static NdArray Stack(IList<NdArray> rows, string dtype, int[] rowShape)
        {
            var shape = new int[rowShape.Length + 1];
            shape[0] = rows.Count;
            Array.Copy(rowShape, 0, shape, 1, rowShape.Length);
            int rowBytes = (int)CountOf(rowShape) * ItemSizeOf(dtype);
            var data = new byte[rowBytes * rows.Count];
            for (int i = 0; i < rows.Count; i++)
            {
                var r = rows[i];
                if (r.Dtype != dtype || r.Data.Length != rowBytes)
                    throw new ArgumentException("cannot stack " + r + " with rows of " + dtype + " " + ShapeString(rowShape));
                Buffer.BlockCopy(r.Data, 0, data, i * rowBytes, rowBytes);
            }
            return new NdArray(dtype, shape, data);
        }

        private void SwapBytes()
        {
            int s = ItemSize;
            for (int o = 0; o < Data.Length; o += s) Array.Reverse(Data, o, s);
        }
    }

    /// <summary>Little-endian reads and writes, and float16 conversion.</summary>
    internal static class Bits
    {
        public static ulong ReadU(byte[] b, int o, int n)
        {
            ulong v = 0;
            for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[o + i];
            return v;
        }

        public static void WriteU(byte[] b, int o, int n, ulong v)
        {
            for (int i = 0; i < n; i++) { b[o + i] = (byte)v; v >>= 8; }
        }

        public static float ReadFloat(byte[] b, int o)
        {
            if (BitConverter.IsLittleEndian) return BitConverter.ToSingle(b, o);
            var t = new byte[4];
            Array.Copy(b, o, t, 0, 4);
            Array.Reverse(t);
            return BitConverter.ToSingle(t, 0);
        }

        public static void WriteFloat(byte[] b, int o, float v)
        {
            var t = BitConverter.GetBytes(v);
            if (!BitConverter.IsLittleEndian) Array.Reverse(t);
            Buffer.BlockCopy(t, 0, b, o, 4);
        }

        public static double ReadDouble(byte[] b, int o)
        {
            return BitConverter.Int64BitsToDouble(unchecked((long)ReadU(b, o, 8)));
        }

        public static void WriteDouble(byte[] b, int o, double v)
        {
            WriteU(b, o, 8, unchecked((ulong)BitConverter.DoubleToInt64Bits(v)));
        }

        public static float HalfToFloat(ushort h)
        {
            int sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
            double v;
            if (exp == 0) v = mant * Math.Pow(2, -24);
            else if (exp == 31) v = mant == 0 ? double.PositiveInfinity : double.NaN;
            else v = (1 + mant / 1024.0) * Math.Pow(2, exp - 15);
            return (float)(sign == 1 ? -v : v);
        }

        /// <summary>float -> IEEE half, round to nearest even (as numpy does).</summary>
        public static ushort FloatToHalf(float f)
        {
            uint x = unchecked((uint)BitConverter.ToInt32(BitConverter.GetBytes(f), 0));
            uint sign = (x >> 16) & 0x8000;
            int exp = (int)((x >> 23) & 0xff);
            uint mant = x & 0x7fffff;
            if (exp == 0xff) return (ushort)(sign | 0x7c00 | (mant != 0 ? 0x200u : 0u));
            int e = exp - 127 + 15;
            if (e >= 31) return (ushort)(sign | 0x7c00);
            if (e <= 0)
            {
                if (e < -10) return (ushort)sign;
                mant |= 0x800000;
                int shift = 14 - e;
                uint half = mant >> shift;
                uint rem = mant & ((1u << shift) - 1);
                uint mid = 1u << (shift - 1);
                if (rem > mid || (rem == mid && (half & 1) != 0)) half++;
                return (ushort)(sign | half);
            }
            uint h = (uint)(e << 10) | (mant >> 13);
            uint r = mant & 0x1fff;
            if (r > 0x1000 || (r == 0x1000 && (h & 1) != 0)) h++;
            return (ushort)(sign | h);
        }
    }

    /// <summary>Encodes values of the model above to canonical MessagePack.</summary>
    public sealed class MsgPackWriter
    {
        public const sbyte NdArrayExt = 1;
        private byte[] _buf;
        private int _len;

        public MsgPackWriter(int capacity = 256) { _buf = new byte[Math.Max(16, capacity)]; }

        public int Length { get { return _len; } }

        public byte[] ToArray()
        {
            var r = new byte[_len];
            Buffer.BlockCopy(_buf, 0, r, 0, _len);
            return r;
        }

        public void Clear() { _len = 0; }

        private void Ensure(int n)
        {
            if (_len + n <= _buf.Length) return;
            int size = _buf.Length * 2;
            while (size < _len + n) size *= 2;
            var b = new byte[size];
            Buffer.BlockCopy(_buf, 0, b, 0, _len);
            _buf = b;
        }

        private void Byte(int b) { Ensure(1); _buf[_len++] = (byte)b; }

        private void BigEndian(ulong v, int n)
        {
            Ensure(n);
            for (int i = n - 1; i >= 0; i--) { _buf[_len + i] = (byte)v; v >>= 8; }
            _len += n;
        }

        public void WriteRaw(byte[] data, int offset, int count)
        {
            Ensure(count);
            Buffer.BlockCopy(data, offset, _buf, _len, count);
            _len += count;
        }

        public void WriteNil() { Byte(0xc0); }

        public void WriteBool(bool v) { Byte(v ? 0xc3 : 0xc2); }

        public void WriteInt(long v)
        {
            if (v >= 0) { WriteUInt((ulong)v); return; }
            if (v >= -32) Byte((int)(v & 0xff));
            else if (v >= sbyte.MinValue) { Byte(0xd0); BigEndian(unchecked((ulong)v), 1); }
            else if (v >= short.MinValue) { Byte(0xd1); BigEndian(unchecked((ulong)v), 2); }
            else if (v >= int.MinValue) { Byte(0xd2); BigEndian(unchecked((ulong)v), 4); }
            else { Byte(0xd3); BigEndian(unchecked((ulong)v), 8); }
        }

        public void WriteUInt(ulong v)
        {
            if (v < 128) Byte((int)v);
            else if (v <= byte.MaxValue) { Byte(0xcc); BigEndian(v, 1); }
            else if (v <= ushort.MaxValue) { Byte(0xcd); BigEndian(v, 2); }
            else if (v <= uint.MaxValue) { Byte(0xce); BigEndian(v, 4); }
            else { Byte(0xcf); BigEndian(v, 8); }
        }

        /// <summary>Floats outside arrays always travel as float 64.</summary>
        public void WriteDouble(double v)
        {
            Byte(0xcb);
            BigEndian(unchecked((ulong)BitConverter.DoubleToInt64Bits(v)), 8);
        }

        public void WriteString(string s)
        {
            int n = Encoding.UTF8.GetByteCount(s);
            if (n < 32) Byte(0xa0 | n);
            else if (n <= byte.MaxValue) { Byte(0xd9); BigEndian((ulong)n, 1); }
            else if (n <= ushort.MaxValue) { Byte(0xda); BigEndian((ulong)n, 2); }
            else { Byte(0xdb); BigEndian((ulong)n, 4); }
            Ensure(n);
            Encoding.UTF8.GetBytes(s, 0, s.Length, _buf, _len);
            _len += n;
        }

        public void WriteBin(byte[] b) { WriteBin(b, 0, b.Length); }

        public void WriteBin(byte[] b, int offset, int count)
        {
            if (count <= byte.MaxValue) { Byte(0xc4); BigEndian((ulong)count, 1); }
            else if (count <= ushort.MaxValue) { Byte(0xc5); BigEndian((ulong)count, 2); }
            else { Byte(0xc6); BigEndian((ulong)count, 4); }
            WriteRaw(b, offset, count);
        }

        public void WriteArrayHeader(int n)
        {
            if (n < 16) Byte(0x90 | n);
            else if (n <= ushort.MaxValue) { Byte(0xdc); BigEndian((ulong)n, 2); }
            else { Byte(0xdd); BigEndian((ulong)n, 4); }
        }

        public void WriteMapHeader(int n)
        {
            if (n < 16) Byte(0x80 | n);
            else if (n <= ushort.MaxValue) { Byte(0xde); BigEndian((ulong)n, 2); }
            else { Byte(0xdf); BigEndian((ulong)n, 4); }
        }

        public void WriteExtHeader(sbyte type, int n)
        {
            switch (n)
            {
                case 1: Byte(0xd4); break;
                case 2: Byte(0xd5); break;
                case 4: Byte(0xd6); break;
                case 8: Byte(0xd7); break;
                case 16: Byte(0xd8); break;
                default:
                    if (n <= byte.MaxValue) { Byte(0xc7); BigEndian((ulong)n, 1); }
                    else if (n <= ushort.MaxValue) { Byte(0xc8); BigEndian((ulong)n, 2); }
                    else { Byte(0xc9); BigEndian((ulong)n, 4); }
                    break;
            }
            Byte(unchecked((byte)type));
        }

        public void WriteNdArray(NdArray a)
        {
            // The payload is itself msgpack [dtype, shape, data]; its length goes first,
            // so compute it rather than encoding twice.
            int dtypeLen = a.Dtype.Length; // ASCII names, all < 32 bytes: fixstr
            int shapeLen = HeaderSize(a.Shape.Length, 16, 65536);
            foreach (int d in a.Shape) shapeLen += UIntSize((ulong)d);
            int n = a.Data.Length;
            int binHead = n <= byte.MaxValue ? 2 : n <= ushort.MaxValue ? 3 : 5;
            int payload = 1 + 1 + dtypeLen + shapeLen + binHead + n;
            WriteExtHeader(NdArrayExt, payload);
            WriteArrayHeader(3);
            WriteString(a.Dtype);
            WriteArrayHeader(a.Shape.Length);
            foreach (int d in a.Shape) WriteUInt((ulong)d);
            WriteBin(a.Data);
        }

        private static int HeaderSize(int n, int fixLimit, int sixteenLimit)
        {
            return n < fixLimit ? 1 : n < sixteenLimit ? 3 : 5;
        }

        private static int UIntSize(ulong v)
        {
            return v < 128 ? 1 : v <= byte.MaxValue ? 2 : v <= ushort.MaxValue ? 3 : v <= uint.MaxValue ? 5 : 9;
        }

        /// <summary>Write any value of the model (and common CLR numbers and collections).</summary>
        public void Write(object v) { Write(v, 0); }

        private void Write(object v, int depth)
        {
            if (depth > MsgPack.MaxDepth) throw new MsgPackException("value nests deeper than " + MsgPack.MaxDepth + " levels");
            if (v == null) { WriteNil(); return; }
            var s = v as string;
            if (s != null) { WriteString(s); return; }
            if (v is bool) { WriteBool((bool)v); return; }
            if (v is long) { WriteInt((long)v); return; }
            if (v is int) { WriteInt((int)v); return; }
            if (v is double) { WriteDouble((double)v); return; }
            if (v is float) { WriteDouble((float)v); return; }
            if (v is ulong) { WriteUInt((ulong)v); return; }
            if (v is uint) { WriteUInt((uint)v); return; }
            if (v is short) { WriteInt((short)v); return; }
            if (v is ushort) { WriteUInt((ushort)v); return; }
            if (v is sbyte) { WriteInt((sbyte)v); return; }
            if (v is byte) { WriteUInt((byte)v); return; }
            var bytes = v as byte[];
            if (bytes != null) { WriteBin(bytes); return; }
            var nd = v as NdArray;
            if (nd != null) { WriteNdArray(nd); return; }
            var map = v as MsgMap;
            if (map != null)
            {
                WriteMapHeader(map.Count);
                foreach (var kv in map) { WriteString(kv.Key); Write(kv.Value, depth + 1); }
                return;
            }
            var dict = v as IDictionary<string, object>;
            if (dict != null)
            {
                WriteMapHeader(dict.Count);
                foreach (var kv in dict) { WriteString(kv.Key); Write(kv.Value, depth + 1); }
                return;
            }
            var list = v as IList;
            if (list != null)
            {
                WriteArrayHeader(list.Count);
                foreach (var item in list) Write(item, depth + 1);
                return;
            }
            throw new MsgPackException("cannot encode a value of type " + v.GetType().Name
                                       + "; use null, bool, integers, double, string, byte[], IList, MsgMap or NdArray");
        }
    }

    /// <summary>Decodes one MessagePack value of this protocol; anything else raises MsgPackException.</summary>
    public sealed class MsgPackReader
    {
        private readonly byte[] _b;
        private readonly int _end;
        private int _pos;

        public MsgPackReader(byte[] data) : this(data, 0, data.Length) { }

        public MsgPackReader(byte[] data, int offset, int count)
        {
            _b = data;
            _pos = offset;
            _end = offset + count;
        }

        public int Position { get { return _pos; } }

        public bool AtEnd { get { return _pos >= _end; } }

        private void Need(long n, string what)
        {
            if (n < 0 || _pos + n > _end)
                throw new MsgPackException("truncated message: " + what + " needs " + n + " bytes at offset " + _pos
                                           + " but only " + (_end - _pos) + " remain");
        }

        private ulong BigEndian(int n, string what)
        {
            Need(n, what);
            ulong v = 0;
            for (int i = 0; i < n; i++) v = (v << 8) | _b[_pos + i];
            _pos += n;
            return v;
        }

        private byte[] Take(long n, string what)
        {
            Need(n, what);
            var r = new byte[n];
            Buffer.BlockCopy(_b, _pos, r, 0, (int)n);
            _pos += (int)n;
            return r;
        }

        private string Str(long n)
        {
            Need(n, "str");
            string s;
            try { s = new UTF8Encoding(false, true).GetString(_b, _pos, (int)n); }
            catch (ArgumentException e) { throw new MsgPackException("str at offset " + _pos + " is not valid UTF-8", e); }
            _pos += (int)n;
            return s;
        }

        public object Read() { return Read(0); }

        private object Read(int depth)
        {
            if (depth > MsgPack.MaxDepth) throw new MsgPackException("message nests deeper than " + MsgPack.MaxDepth + " levels");
            Need(1, "a value");
            int t = _b[_pos++];
            if (t <= 0x7f) return (long)t;
            if (t >= 0xe0) return (long)(sbyte)t;
            if ((t & 0xf0) == 0x80) return ReadMap(t & 0x0f, depth);
            if ((t & 0xf0) == 0x90) return ReadArray(t & 0x0f, depth);
            if ((t & 0xe0) == 0xa0) return Str(t & 0x1f);
            switch (t)
            {
                case 0xc0: return null;
                case 0xc2: return false;
                case 0xc3: return true;
                case 0xc4: return Take((long)BigEndian(1, "bin8"), "bin8");
                case 0xc5: return Take((long)BigEndian(2, "bin16"), "bin16");
                case 0xc6: return Take((long)BigEndian(4, "bin32"), "bin32");
                case 0xc7: return Ext((int)BigEndian(1, "ext8"));
                case 0xc8: return Ext((int)BigEndian(2, "ext16"));
                case 0xc9: return Ext((long)BigEndian(4, "ext32"));
                case 0xca:
                {
                    var bits = (uint)BigEndian(4, "float32");
                    return (double)BitConverter.ToSingle(BitConverter.GetBytes(unchecked((int)bits)), 0);
                }
                case 0xcb: return BitConverter.Int64BitsToDouble(unchecked((long)BigEndian(8, "float64")));
                case 0xcc: return (long)BigEndian(1, "uint8");
                case 0xcd: return (long)BigEndian(2, "uint16");
                case 0xce: return (long)BigEndian(4, "uint32");
                case 0xcf:
                {
                    ulong u = BigEndian(8, "uint64");
                    if (u <= long.MaxValue) return (long)u;
                    return u;
                }
                case 0xd0: return (long)(sbyte)BigEndian(1, "int8");
                case 0xd1: return (long)(short)BigEndian(2, "int16");
                case 0xd2: return (long)(int)BigEndian(4, "int32");
                case 0xd3: return unchecked((long)BigEndian(8, "int64"));
                case 0xd4: return Ext(1);
                case 0xd5: return Ext(2);
                case 0xd6: return Ext(4);
                case 0xd7: return Ext(8);
                case 0xd8: return Ext(16);
                case 0xd9: return Str((long)BigEndian(1, "str8"));
                case 0xda: return Str((long)BigEndian(2, "str16"));
                case 0xdb: return Str((long)BigEndian(4, "str32"));
                case 0xdc: return ReadArray((long)BigEndian(2, "array16"), depth);
                case 0xdd: return ReadArray((long)BigEndian(4, "array32"), depth);
                case 0xde: return ReadMap((long)BigEndian(2, "map16"), depth);
                case 0xdf: return ReadMap((long)BigEndian(4, "map32"), depth);
                default: throw new MsgPackException("byte 0x" + t.ToString("x2") + " at offset " + (_pos - 1) + " is not a MessagePack type");
            }
        }

        private List<object> ReadArray(long n, int depth)
        {
            // Every element takes at least one byte: refuse lengths the rest cannot hold.
            Need(n, "array of " + n + " items");
            var list = new List<object>((int)n);
            for (long i = 0; i < n; i++) list.Add(Read(depth + 1));
            return list;
        }

        private MsgMap ReadMap(long n, int depth)
        {
            Need(2 * n, "map of " + n + " entries");
            var map = new MsgMap();
            for (long i = 0; i < n; i++)
            {
                int at = _pos;
                var key = Read(depth + 1) as string;
                if (key == null) throw new MsgPackException("map key at offset " + at + " is not a string (protocol maps have string keys)");
                var value = Read(depth + 1);
                if (map.ContainsKey(key)) throw new MsgPackException("map has the key '" + key + "' twice");
                map.Add(key, value);
            }
            return map;
        }

        private NdArray Ext(long n)
        {
            Need(1 + n, "ext");
            int type = (sbyte)_b[_pos++];
            if (type != MsgPackWriter.NdArrayExt)
                throw new MsgPackException("unknown MessagePack extension type " + type + " (only 1, ndarray, is allowed)");
            int start = _pos;
            _pos += (int)n;
            var inner = new MsgPackReader(_b, start, (int)n);
            var parts = inner.Read(MsgPack.MaxDepth - 2) as List<object>;
            if (!inner.AtEnd) throw new MsgPackException("array payload has trailing bytes");
            if (parts == null || parts.Count != 3) throw new MsgPackException("array payload must be [dtype, shape, data]");
            var dtype = parts[0] as string;
            if (dtype == null || NdArray.ItemSizeOf(dtype) == 0)
                throw new MsgPackException("array dtype " + (dtype == null ? "(not a string)" : "'" + dtype + "'") + " is not a wire dtype");
            var shapeList = parts[1] as List<object>;
            if (shapeList == null || shapeList.Count > NdArray.MaxNdim)
                throw new MsgPackException("array shape must be a list of at most " + NdArray.MaxNdim + " non-negative ints");
            var shape = new int[shapeList.Count];
            for (int i = 0; i < shape.Length; i++)
            {
                if (!(shapeList[i] is long) || (long)shapeList[i] < 0 || (long)shapeList[i] > int.MaxValue)
                    throw new MsgPackException("array shape must be a list of at most " + NdArray.MaxNdim + " non-negative ints");
                shape[i] = (int)(long)shapeList[i];
            }
            var data = parts[2] as byte[];
            if (data == null) throw new MsgPackException("array data must be MessagePack bin");
            return new NdArray(dtype, shape, data);
        }
    }

    /// <summary>Entry points: MsgPack.Encode(value) and MsgPack.Decode(bytes).</summary>
    public static class MsgPack
    {
        public const int MaxDepth = 64;

        public static byte[] Encode(object value)
        {
            var w = new MsgPackWriter();
            w.Write(value);
            return w.ToArray();
        }

        /// <summary>Decode exactly one value; trailing bytes are an error.</summary>
        public static object Decode(byte[] data)
        {
            var r = new MsgPackReader(data);
            var v = r.Read();
            if (!r.AtEnd) throw new MsgPackException("body holds more than one MessagePack value (" + (data.Length - r.Position) + " extra bytes)");
            return v;
        }
    }
}
