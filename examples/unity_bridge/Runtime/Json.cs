// A small JSON reader for the ONNX model's `agentsdk_contract` (PROTOCOL.md "The ONNX
// model"). It yields the same value model as the MessagePack decoder: MsgMap (order
// kept), List<object>, string, long (integers), double (numbers with '.', 'e' or too
// big for long), bool, null. Unity's JsonUtility cannot read free-form maps, hence this.

using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Agentsdk
{
    public static class Json
    {
        public static object Parse(string text)
        {
            var p = new Parser(text);
            p.Ws();
            var v = p.Value(0);
            p.Ws();
            if (p.Pos != text.Length) throw p.Error("unexpected text after the JSON value");
            return v;
        }

        private sealed class Parser
        {
            private readonly string _s;
            public int Pos;

            public Parser(string s) { _s = s; }

            public FormatException Error(string what) { return new FormatException("JSON: " + what + " at offset " + Pos); }

            public void Ws()
            {
                while (Pos < _s.Length && (_s[Pos] == ' ' || _s[Pos] == '\t' || _s[Pos] == '\n' || _s[Pos] == '\r')) Pos++;
            }

            private void Expect(string word)
            {
                if (string.CompareOrdinal(_s, Pos, word, 0, word.Length) != 0) throw Error("expected '" + word + "'");
                Pos += word.Length;
            }

            public object Value(int depth)
            {
                if (depth > 128) throw Error("nesting too deep");
                if (Pos >= _s.Length) throw Error("unexpected end");
                char c = _s[Pos];
                switch (c)
                {
                    case '{':
                    {
                        Pos++;
                        var m = new MsgMap();
                        Ws();
                        if (Pos < _s.Length && _s[Pos] == '}') { Pos++; return m; }
                        while (true)
                        {
                            Ws();
                            if (Pos >= _s.Length || _s[Pos] != '"') throw Error("expected a string key");
                            var key = Str();
                            Ws();
                            Expect(":");
                            Ws();
                            m[key] = Value(depth + 1);
                            Ws();
                            if (Pos < _s.Length && _s[Pos] == ',') { Pos++; continue; }
                            Expect("}");
                            return m;
                        }
                    }
                    case '[':
                    {
                        Pos++;
                        var l = new List<object>();
                        Ws();
                        if (Pos < _s.Length && _s[Pos] == ']') { Pos++; return l; }
                        while (true)
                        {
                            Ws();
                            l.Add(Value(depth + 1));
                            Ws();
                            if (Pos < _s.Length && _s[Pos] == ',') { Pos++; continue; }
                            Expect("]");
                            return l;
                        }
                    }
                    case '"': return Str();
                    case 't': Expect("true"); return true;
                    case 'f': Expect("false"); return false;
                    case 'n': Expect("null"); return null;
                    default: return Number();
                }
            }

            private object Number()
            {
                int start = Pos;
                bool isFloat = false;
                if (Pos < _s.Length && _s[Pos] == '-') Pos++;
                while (Pos < _s.Length)
                {
                    char c = _s[Pos];
                    if (c >= '0' && c <= '9') Pos++;
                    else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') { isFloat = true; Pos++; }
                    else break;
                }
                var text = _s.Substring(start, Pos - start);
                if (text.Length == 0 || text == "-") throw Error("expected a value");
                long l;
                if (!isFloat && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out l)) return l;
                ulong u;
                if (!isFloat && ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out u)) return u;
                double d;
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out d)) throw Error("bad number '" + text + "'");
                return d;
            }

            private string Str()
            {
                Pos++; // opening quote
                var sb = new StringBuilder();
                while (true)
                {
                    if (Pos >= _s.Length) throw Error("unterminated string");
                    char c = _s[Pos++];
                    if (c == '"') return sb.ToString();
                    if (c != '\\') { sb.Append(c); continue; }
                    if (Pos >= _s.Length) throw Error("unterminated escape");
                    char e = _s[Pos++];
                    switch (e)
                    {
                        case '"': sb.Append('"'); break;
                        case '\\': sb.Append('\\'); break;
                        case '/': sb.Append('/'); break;
                        case 'b': sb.Append('\b'); break;
                        case 'f': sb.Append('\f'); break;
                        case 'n': sb.Append('\n'); break;
                        case 'r': sb.Append('\r'); break;
                        case 't': sb.Append('\t'); break;
                        case 'u':
                            if (Pos + 4 > _s.Length) throw Error("short \\u escape");
                            sb.Append((char)int.Parse(_s.Substring(Pos, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                            Pos += 4;
                            break;
                        default: throw Error("bad escape '\\" + e + "'");
                    }
                }
            }
        }
    }
}
